"""Installing arbot into a Slack workspace (OAuth v2), on slack_sdk's SQLAlchemy installation and
OAuth state stores over our own database (tables from our migrations).

Tokens are sealed before slack_sdk stores them and opened when it finds them
(`SealedInstallationStore`): a copy of the database is no copy of anyone's Slack access. The
channel the installer picks (the incoming-webhook scope's channel picker) becomes the
workspace's finance channel."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.core.sealing import Sealer
from bot.workspaces.registry import TEAM_ID, InstalledWorkspace, Workspaces

log = logging.getLogger(__name__)
# What the app asks for; slack/manifest.yml lists the same (a test keeps them equal). The
# incoming-webhook scope is only there for its channel picker: the installer chooses the
# finance channel while installing.
BOT_SCOPES = (
    "chat:write",
    "commands",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "files:write",
    "incoming-webhook",
)
STATE_SECONDS = 600
_PURPOSE = b"arbot slack tokens v1"
_SEALED = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_Entity = TypeVar("_Entity", Installation, Bot)


class SealedInstallationStore(InstallationStore):
    """slack_sdk's SQLAlchemy store, handed sealed tokens and handing back open ones."""

    def __init__(self, inner: SQLAlchemyInstallationStore, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer

    @property
    def logger(self) -> logging.Logger:
        return log

    def save(self, installation: Installation) -> None:
        sealed = self._map(installation, self.sealer.seal)
        if sealed.incoming_webhook_url:
            sealed.incoming_webhook_url = self.sealer.seal(sealed.incoming_webhook_url)
        self.inner.save(sealed)

    def save_bot(self, bot: Bot) -> None:
        self.inner.save_bot(self._map(bot, self.sealer.seal))

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = self.inner.find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._map(found, self.sealer.open) if found is not None else None

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = self.inner.find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        if found is None:
            return None
        opened = self._map(found, self.sealer.open)
        if opened.incoming_webhook_url:
            opened.incoming_webhook_url = self.sealer.open(opened.incoming_webhook_url)
        return opened

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        self.inner.delete_installation(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.inner.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    def bot_token(self, team_id: str) -> str | None:
        bot = self.find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot is not None else None

    @staticmethod
    def _map(entity: _Entity, change: Any) -> _Entity:
        mapped = copy.copy(entity)
        for name in _SEALED:
            value = getattr(mapped, name, None)
            if value:
                setattr(mapped, name, change(value))
        return mapped


def main_team(main: Runtime) -> str | None:
    """The workspace SLACK_BOT_TOKEN belongs to (None without one)."""
    token = main.settings.slack_bot_token
    if token is None:
        return None
    client = WebClient(token=token.get_secret_value(), base_url=main.settings.slack_api_url)
    try:
        return str(client.auth_test()["team_id"])
    except SlackApiError as exc:
        raise InstallFailed(
            f"SLACK_BOT_TOKEN does not work ({exc.response.get('error')}), so arbot cannot tell "
            "whether this is the main workspace; fix it first"
        ) from None


def installation_store(main: Runtime) -> SealedInstallationStore:
    """The deployment's installations, in the main database."""
    settings = main.settings
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    inner = SQLAlchemyInstallationStore(
        client_id=settings.slack_client_id or "", engine=main.engine, logger=log
    )
    return SealedInstallationStore(inner, Sealer(secret, _PURPOSE, "each workspace's Slack token"))


def state_store(main: Runtime) -> SQLAlchemyOAuthStateStore:
    """One-time states for installs in progress (ten minutes each, by the wall clock)."""
    return SQLAlchemyOAuthStateStore(
        expiration_seconds=STATE_SECONDS, engine=main.engine, logger=log
    )


def redirect_uri(main: Runtime) -> str:
    public = main.settings.public_url
    if not public:
        raise UserError("set ARBOT_PUBLIC_URL: Slack sends installers back to it")
    return f"{public.rstrip('/')}/slack/oauth_redirect"


def oauth_ready(main: Runtime) -> str | None:
    """None when installing can work; otherwise what to set."""
    settings = main.settings
    missing = [
        name
        for name, value in (
            ("SLACK_CLIENT_ID", settings.slack_client_id),
            ("SLACK_CLIENT_SECRET", settings.slack_client_secret),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
            ("ARBOT_SECRET_KEY", settings.secret_key),
            ("ARBOT_PUBLIC_URL", settings.public_url),
        )
        if not value
    ]
    if missing:
        return "installing into several workspaces needs " + ", ".join(missing)
    return None


def authorize_url(main: Runtime, state: str) -> str:
    generator = AuthorizeUrlGenerator(
        client_id=main.settings.slack_client_id or "",
        scopes=list(BOT_SCOPES),
        redirect_uri=redirect_uri(main),
        authorization_url=main.settings.slack_authorize_url,
    )
    return generator.generate(state)


@dataclass(frozen=True)
class Installed:
    workspace: InstalledWorkspace
    reinstalled: bool


class InstallFailed(Exception):
    """Slack did not grant the install; the message says what happened, for the installer."""


def complete_install(main: Runtime, workspaces: Workspaces, code: str) -> Installed:
    """Trade the one-time code for the workspace's bot token; make the workspace's storage
    first, then store the token sealed and note the workspace, so an install that fails half-way
    leaves nothing behind. A token Slack granted for an install arbot refuses is revoked."""
    settings = main.settings
    client = WebClient(base_url=settings.slack_api_url)
    secret = settings.slack_client_secret
    try:
        answer = client.oauth_v2_access(
            client_id=settings.slack_client_id or "",
            client_secret=secret.get_secret_value() if secret else "",
            code=code,
            redirect_uri=redirect_uri(main),
        )
    except SlackApiError as exc:
        raise InstallFailed(f"Slack refused the install ({exc.response.get('error')})") from None
    token = str(answer.get("access_token") or "")
    try:
        return _keep(main, workspaces, answer, token)
    except BaseException:
        _revoke(main, token)  # whatever stopped the install, the token goes back
        raise


def _keep(main: Runtime, workspaces: Workspaces, answer: Any, token: str) -> Installed:
    """Check the install, make the workspace's storage, store the token and note the workspace.
    A failure after the token is stored takes it out again."""
    team = answer.get("team") or {}
    team_id = str(team.get("id") or "")
    refusal = _refusal(main, answer, team_id)
    if refusal:
        raise InstallFailed(refusal)
    hook = answer.get("incoming_webhook") or {}
    user = (answer.get("authed_user") or {}).get("id")
    installation = Installation(
        app_id=answer.get("app_id"),
        enterprise_id=None,
        team_id=team_id,
        team_name=team.get("name"),
        bot_token=token,
        bot_id=answer.get("bot_id"),
        bot_user_id=answer.get("bot_user_id"),
        bot_scopes=answer.get("scope") or "",
        user_id=user or "",
        incoming_webhook_url=hook.get("url"),
        incoming_webhook_channel=hook.get("channel"),
        incoming_webhook_channel_id=hook.get("channel_id"),
        incoming_webhook_configuration_url=hook.get("configuration_url"),
        is_enterprise_install=False,
        token_type=answer.get("token_type"),
    )
    before = workspaces.get(team_id)
    try:
        workspaces.prepare(team_id)
    except UserError:  # a setting to fix (ARBOT_SECRET_KEY, DATABASE_URL): it says which
        raise
    except Exception as exc:
        log.exception("workspace %s: its database could not be made", team_id)
        raise InstallFailed(
            f"arbot could not make this workspace's database ({type(exc).__name__}: {exc}); "
            "nothing was installed. Tell whoever runs arbot"
        ) from None
    store = installation_store(main)
    store.save(installation)
    try:
        workspace = workspaces.record_install(
            team_id, team.get("name") or team_id, hook.get("channel_id"), user
        )
    except BaseException:  # its token is revoked (above): keep none of it
        store.delete_bot(enterprise_id=None, team_id=team_id)
        store.delete_installation(enterprise_id=None, team_id=team_id)
        raise
    log.info("installed into workspace %s", team_id)
    return Installed(workspace, reinstalled=before is not None)


def _refusal(main: Runtime, answer: Any, team_id: str) -> str | None:
    """Why arbot will not take this install, or None."""
    if answer.get("is_enterprise_install") or answer.get("enterprise"):
        return (
            "arbot installs into standalone workspaces; workspaces of an Enterprise Grid "
            "organisation are not supported"
        )
    if not TEAM_ID.match(team_id):
        return f"Slack named no usable workspace ({team_id!r})"
    if team_id == main_team(main):
        return (
            f"workspace {team_id} is already the main one (SLACK_BOT_TOKEN): its data is in the "
            "main database, so there is nothing to install"
        )
    return None


def _revoke(main: Runtime, token: str) -> None:
    """Give back a token arbot will not keep (best effort: the install fails either way)."""
    if not token:
        return
    try:
        WebClient(token=token, base_url=main.settings.slack_api_url).auth_revoke()
    except SlackApiError as exc:
        log.warning("a refused install's token was not revoked: %s", exc.response.get("error"))
