"""Installing arbot into a Slack workspace (OAuth v2), on slack_sdk's SQLAlchemy installation and
OAuth state stores over our own database (tables from our migrations).

Tokens are sealed before slack_sdk stores them and opened when it finds them
(`SealedInstallationStore`): a copy of the database is no copy of anyone's Slack access. The
channel the installer picks (the incoming-webhook scope's channel picker) becomes the
workspace's finance channel."""

from __future__ import annotations

import copy
import logging
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.core.sealing import Sealer, slack_token_sealer
from integrations.base.slack import SlackGrant
from integrations.errors import InstallFailed

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
    return SealedInstallationStore(inner, slack_token_sealer(secret))


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


class SlackInstaller:
    """The SlackInstalls port: Slack's Web API for the install, and the sealed installation store
    in the main database."""

    def __init__(self, main: Runtime) -> None:
        self.main = main

    def exchange_code(self, code: str) -> SlackGrant:
        settings = self.main.settings
        client = WebClient(base_url=settings.slack_api_url)
        secret = settings.slack_client_secret
        try:
            answer = client.oauth_v2_access(
                client_id=settings.slack_client_id or "",
                client_secret=secret.get_secret_value() if secret else "",
                code=code,
                redirect_uri=redirect_uri(self.main),
            )
        except SlackApiError as exc:
            raise InstallFailed(
                f"Slack refused the install ({exc.response.get('error')})"
            ) from None
        team = answer.get("team") or {}
        hook = answer.get("incoming_webhook") or {}
        return SlackGrant(
            token=str(answer.get("access_token") or ""),
            team_id=str(team.get("id") or ""),
            team_name=team.get("name"),
            enterprise=bool(answer.get("is_enterprise_install") or answer.get("enterprise")),
            installer=(answer.get("authed_user") or {}).get("id"),
            channel_id=hook.get("channel_id"),
            channel=hook.get("channel"),
            webhook_url=hook.get("url"),
            webhook_configuration_url=hook.get("configuration_url"),
            app_id=answer.get("app_id"),
            bot_id=answer.get("bot_id"),
            bot_user_id=answer.get("bot_user_id"),
            scopes=answer.get("scope") or "",
            token_type=answer.get("token_type"),
        )

    def main_team(self) -> str | None:
        return main_team(self.main)

    def keep(self, grant: SlackGrant) -> None:
        installation_store(self.main).save(
            Installation(
                app_id=grant.app_id,
                enterprise_id=None,
                team_id=grant.team_id,
                team_name=grant.team_name,
                bot_token=grant.token,
                bot_id=grant.bot_id,
                bot_user_id=grant.bot_user_id,
                bot_scopes=grant.scopes,
                user_id=grant.installer or "",
                incoming_webhook_url=grant.webhook_url,
                incoming_webhook_channel=grant.channel,
                incoming_webhook_channel_id=grant.channel_id,
                incoming_webhook_configuration_url=grant.webhook_configuration_url,
                is_enterprise_install=False,
                token_type=grant.token_type,
            )
        )

    def forget(self, team_id: str) -> None:
        store = installation_store(self.main)
        store.delete_bot(enterprise_id=None, team_id=team_id)
        store.delete_installation(enterprise_id=None, team_id=team_id)

    def revoke(self, token: str) -> None:
        if not token:
            return
        try:
            WebClient(token=token, base_url=self.main.settings.slack_api_url).auth_revoke()
        except SlackApiError as exc:
            log.warning("a refused install's token was not revoked: %s", exc.response.get("error"))
