"""Several businesses on one deployment. Each Slack workspace installed through /slack/install is
one business, and its data lives apart from every other's: in a PostgreSQL schema of its own
(`<schema>_<team id>`), or on SQLite in a file of its own beside the main one
(`arbot.t0123abc.db`). A workspace's Runtime is connected there and nowhere else, so every query
made for it (plan, status, buttons, webhooks, jobs) is scoped to it by construction: there is no
WHERE clause to forget.

The main database keeps what the deployment shares: the `workspaces` rows, slack_sdk's
installation and OAuth state tables, and the data of the single workspace set up with
SLACK_BOT_TOKEN (unchanged from before several workspaces existed).

A workspace's settings are its own. It shares with the deployment only what belongs to the
deployment (`DEPLOYMENT`: the Slack app, API addresses, the OAuth apps of the ledgers, the LLM);
everything that belongs to a business (sending credentials, Stripe keys, channel, timezone,
playbook rules) is set per workspace with `arbot workspace set` and stored sealed. Nothing of the
main workspace's business settings reaches another business. ARBOT_SECRET_KEY is derived per
workspace, so a reply token or unsubscribe link from one workspace's mail means nothing in
another's."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.core.clock import Clock
from bot.core.db import normalise_url
from bot.core.errors import UserError
from bot.core.logs import mask_secrets, secrets_of
from bot.core.models import Workspace
from bot.core.runtime import Runtime, start
from bot.core.sealing import Sealer, SealError
from bot.core.settings import Settings, field_for_variable, given_settings
from bot.workspaces import installs
from bot.workspaces.open_backoff import OpenBackoff

# What an installed workspace takes from the deployment's environment; the rest is its own.
DEPLOYMENT = (
    "slack_signing_secret",
    "slack_api_url",
    "slack_client_id",
    "slack_client_secret",
    "slack_authorize_url",
    "now",
    "stripe_api_base",
    "twilio_api_url",
    "quickbooks_client_id",
    "quickbooks_client_secret",
    "quickbooks_api_url",
    "quickbooks_authorize_url",
    "quickbooks_token_url",
    "xero_client_id",
    "xero_client_secret",
    "xero_api_url",
    "xero_authorize_url",
    "xero_token_url",
    "freshbooks_client_id",
    "freshbooks_client_secret",
    "freshbooks_api_url",
    "freshbooks_authorize_url",
    "freshbooks_token_url",
    "sync_redirect_uri",
    "hubspot_api_url",
    "pipedrive_api_url",
    "llm_base_url",
    "llm_model",
    "llm_api_key",
    "scheduler_enabled",
    "log_json",
)
# Made for each workspace from the deployment's: never set by hand.
DERIVED = ("database_url", "public_url", "secret_key", "slack_bot_token", "workspace")
# The main workspace's alone (Socket Mode serves the app of SLACK_BOT_TOKEN).
MAIN_ONLY = ("slack_app_token",)
TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,31}$")
_SETTINGS_PURPOSE = b"arbot workspace settings v1"
_SECRET_PURPOSE = b"arbot workspace secret v1"


@dataclass(frozen=True)
class InstalledWorkspace:
    team_id: str
    team_name: str
    finance_channel: str | None
    installed_at: datetime
    uninstalled_at: datetime | None
    stamp: str  # changes when it is installed again or its settings change

    @property
    def active(self) -> bool:
        return self.uninstalled_at is None


def check_team_id(team_id: str) -> str:
    """A Slack team id such as T0123ABC; it names a schema or a file, so nothing else passes."""
    if not TEAM_ID.match(team_id or ""):
        raise UserError(f"{team_id!r} is not a Slack workspace id (it looks like T0123ABCD)")
    return team_id


def workspace_database_url(base_url: str, team_id: str) -> str:
    """Where the workspace's data lives, next to the main database's."""
    suffix = check_team_id(team_id).lower()
    url = make_url(normalise_url(base_url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise UserError(
                "several workspaces on SQLite need DATABASE_URL to name a file "
                "(e.g. sqlite:///arbot.db): each workspace gets a file beside it"
            )
        path = Path(database)
        own = path.with_name(f"{path.stem}.{suffix}{path.suffix or '.db'}")
        return url.set(database=str(own)).render_as_string(hide_password=False)
    schema = f"{database_schema(base_url) or 'arbot'}_{suffix}"
    options = [
        part
        for part in url.query.get("options", "").split()  # type: ignore[union-attr]
        if not part.startswith("-csearch_path")
    ]
    options.append(f"-csearch_path={schema}")
    query = {k: v for k, v in url.query.items() if k != "options"}
    query["options"] = " ".join(options)
    return url.set(query=query).render_as_string(hide_password=False)


def database_schema(url_text: str) -> str | None:
    """The schema a PostgreSQL URL's search_path option names (None: the server's default)."""
    url = make_url(normalise_url(url_text))
    options = url.query.get("options", "")
    for part in str(options).split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip('"')
    return None


def workspace_secret(secret_key: str, team_id: str) -> str:
    """The workspace's own ARBOT_SECRET_KEY, derived from the deployment's."""
    digest = hmac.new(secret_key.encode(), _SECRET_PURPOSE + team_id.encode(), hashlib.sha256)
    return digest.hexdigest()


def workspace_settings(
    base: Settings,
    workspace: InstalledWorkspace,
    own: dict[str, str],
    bot_token: str | None,
) -> Settings:
    """The settings a workspace runs with: the deployment's shared part, what is derived for it,
    and its own values (by variable name, as `arbot workspace set` stores them)."""
    team = workspace.team_id
    values: dict[str, Any] = {}
    for name in DEPLOYMENT:
        value = getattr(base, name)
        if value is not None:
            values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    values["finance_channel"] = workspace.finance_channel
    for variable, value in own.items():
        field = field_for_variable(variable)
        if field is not None and field not in (*DEPLOYMENT, *DERIVED, *MAIN_ONLY):
            values[field] = value
    secret = base.secret_key.get_secret_value() if base.secret_key else ""
    values.update(
        database_url=workspace_database_url(base.database_url, team),
        public_url=f"{base.public_url.rstrip('/')}/w/{quote(team)}" if base.public_url else None,
        secret_key=workspace_secret(secret, team) if secret else None,
        slack_bot_token=bot_token,
        workspace=team,
    )
    return given_settings(values, f"workspace {team}'s settings (arbot workspace set {team})")


def settable(variable: str) -> str:
    """The field a workspace may set under this variable name, or a message saying why not."""
    field = field_for_variable(variable)
    if field is None:
        raise UserError(f"{variable}: no such setting (see the README's settings table)")
    if field in MAIN_ONLY:
        raise UserError(f"{variable} is for the main workspace only (Socket Mode)")
    if field in DEPLOYMENT or field in DERIVED:
        raise UserError(
            f"{variable} belongs to the whole deployment (its environment), not to one workspace"
        )
    return field


class Workspaces:
    """The installed workspaces of a deployment, and a Runtime for each (opened once, kept; one
    that fails to open is tried again only after a wait: bot.workspaces.open_backoff).
    `monotonic`: the clock that wait is counted on."""

    def __init__(self, main: Runtime, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.main = main
        self._backoff = OpenBackoff(monotonic)
        self._open: dict[str, tuple[str, Runtime]] = {}
        self._lock = threading.Lock()  # guards the two dicts
        self._locks: dict[str, threading.Lock] = {}

    def _sealer(self) -> Sealer:
        secret = self.main.settings.secret_key
        return Sealer(
            secret.get_secret_value() if secret else "",
            _SETTINGS_PURPOSE,
            "each workspace's Slack token and settings",
        )

    def all(self) -> list[InstalledWorkspace]:
        with self.main.sessions() as session:
            rows = session.scalars(select(Workspace).order_by(Workspace.team_id)).all()
            return [_view(row) for row in rows]

    def installed(self) -> list[InstalledWorkspace]:
        return [w for w in self.all() if w.active]

    def get(self, team_id: str) -> InstalledWorkspace | None:
        with self.main.sessions() as session:
            row = session.get(Workspace, team_id)
            return _view(row) if row is not None else None

    def own_settings(self, team_id: str) -> dict[str, str]:
        """The workspace's own values, by variable name (opened: they hold secrets)."""
        with self.main.sessions() as session:
            row = session.get(Workspace, team_id)
            sealed = row.settings_sealed if row is not None else None
        if not sealed:
            return {}
        try:
            values: dict[str, str] = json.loads(self._sealer().open(sealed))
        except SealError:
            raise UserError(
                f"workspace {team_id}'s settings were sealed with another ARBOT_SECRET_KEY: "
                "set the key they were saved with"
            ) from None
        return values

    def set_settings(self, team_id: str, changes: dict[str, str | None]) -> dict[str, str]:
        """Set (a value) or clear (None) some of a workspace's own settings; checked as a whole
        first, so a bad value changes nothing. Returns the settings now stored."""
        workspace = self.require(team_id)
        values = self.own_settings(team_id)
        for variable, value in changes.items():
            settable(variable)
            if value is None:
                values.pop(variable.upper(), None)
            else:
                values[variable.upper()] = value
        workspace_settings(self.main.settings, workspace, values, None)  # raises when bad
        sealed = self._seal(values)
        with self.main.writing() as session:
            row = session.get(Workspace, team_id)
            assert row is not None
            row.settings_sealed = sealed
        self._forget(team_id)
        return values

    def require(self, team_id: str) -> InstalledWorkspace:
        workspace = self.get(check_team_id(team_id))
        if workspace is None:
            raise UserError(
                f"workspace {team_id} is not installed here: install arbot into it through "
                "/slack/install (see `arbot workspace list`)"
            )
        if not workspace.active:
            raise UserError(f"workspace {team_id} uninstalled arbot; install it again to use it")
        return workspace

    def prepare(self, team_id: str) -> None:
        """Make the workspace's schema or file and migrate it, before it is noted as installed
        (so a failure here leaves nothing half-installed)."""
        check_team_id(team_id)
        self._sealer()  # no ARBOT_SECRET_KEY: say so before anything is stored
        now = self.main.clock.now()
        provisional = InstalledWorkspace(team_id, team_id, None, now, None, "")
        settings = workspace_settings(self.main.settings, provisional, {}, None)
        prepare_storage(self.main, settings.database_url)
        start(settings, clock=self.main.clock).close()

    def record_install(
        self, team_id: str, team_name: str, channel: str | None, user: str | None
    ) -> InstalledWorkspace:
        """Note an install, or a reinstall, which keeps the data and the settings except that
        the channel picked while installing becomes the finance channel again."""
        check_team_id(team_id)
        own = self.own_settings(team_id)
        now = self.main.clock.now()
        with self.main.writing() as session:
            row = session.get(Workspace, team_id)
            if row is None:
                row = Workspace(team_id=team_id, team_name=team_name, installed_at=now)
                session.add(row)
            row.team_name = team_name
            row.finance_channel = channel or row.finance_channel
            if channel and own.pop("ARBOT_FINANCE_CHANNEL", None) is not None:
                row.settings_sealed = self._seal(own)
            row.installed_by = user
            row.installed_at = now
            row.uninstalled_at = None
        self._forget(team_id)
        workspace = self.get(team_id)
        assert workspace is not None
        return workspace

    def _seal(self, values: dict[str, str]) -> str | None:
        return self._sealer().seal(json.dumps(values, sort_keys=True)) if values else None

    def record_uninstall(self, team_id: str) -> bool:
        """Slack said the app left the workspace: stop serving it (its data stays)."""
        with self.main.writing() as session:
            row = session.get(Workspace, team_id)
            if row is None or row.uninstalled_at is not None:
                return False
            row.uninstalled_at = self.main.clock.now()
        self._forget(team_id)
        return True

    def runtime(self, team_id: str) -> Runtime:
        """The workspace's Runtime: its own database, its own settings. Reopened when the
        workspace is installed again or its settings change, in any process (its row is read
        each time: one lookup by key)."""
        try:
            workspace = self.require(team_id)
        except UserError:
            self._forget(team_id)  # uninstalled, perhaps by another replica
            raise
        return self._opened(workspace)

    def installed_runtime(self, team_id: str | None) -> Runtime | None:
        """The Runtime of an installed workspace that `team_id` names; None for anything else
        (not a team id, never installed, uninstalled), with one lookup. Raises when it is
        installed but cannot be opened."""
        if not team_id or not TEAM_ID.match(team_id):
            return None
        workspace = self.get(team_id)
        if workspace is None or not workspace.active:
            self._forget(team_id)
            return None
        return self._opened(workspace)

    def kept_runtime(self, team_id: str | None) -> Runtime | None:
        """The Runtime of a workspace that uninstalled arbot (its data is kept, and a reinstall
        picks it up), for the little that must still reach its data: its customers' unsubscribe
        links. None for anything else (not a team id, never installed, installed). It has no
        Slack token."""
        if not team_id or not TEAM_ID.match(team_id):
            return None
        workspace = self.get(team_id)
        if workspace is None or workspace.active:
            return None
        return self._opened(workspace)

    def _opened(self, workspace: InstalledWorkspace) -> Runtime:
        team_id = workspace.team_id
        with self._lock_of(team_id):
            with self._lock:
                held = self._open.get(team_id)
            if held is not None and held[0] == workspace.stamp:
                return held[1]
            if held is not None:
                held[1].close()
            self._backoff.check(team_id, workspace.stamp)
            try:
                bot_token = installs.bot_token(self.main, team_id)
                settings = workspace_settings(
                    self.main.settings, workspace, self.own_settings(team_id), bot_token
                )
                prepare_storage(self.main, settings.database_url)
                opened = start(settings, clock=self.main.clock)
            except Exception as exc:
                self._backoff.failed(team_id, workspace.stamp, exc)
                raise
            self._backoff.opened(team_id)
            mask_secrets(secrets_of(settings))
            with self._lock:
                self._open[team_id] = (workspace.stamp, opened)
            return opened

    def _lock_of(self, team_id: str) -> threading.Lock:
        """One lock per workspace: opening one (a migration) never holds up the others."""
        with self._lock:
            return self._locks.setdefault(team_id, threading.Lock())

    def _forget(self, team_id: str) -> None:
        with self._lock:
            held = self._open.pop(team_id, None)
        if held is not None:
            held[1].close()

    def close(self) -> None:
        with self._lock:
            for _, opened in self._open.values():
                opened.close()
            self._open.clear()


def prepare_storage(main: Runtime, url: str) -> None:
    """On PostgreSQL, the workspace's schema (migrations then fill it); SQLite makes its file."""
    schema = database_schema(url)
    if main.engine.dialect.name != "postgresql" or schema is None:
        return
    with main.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def _view(row: Workspace) -> InstalledWorkspace:
    return InstalledWorkspace(
        team_id=row.team_id,
        team_name=row.team_name,
        finance_channel=row.finance_channel,
        installed_at=row.installed_at,
        uninstalled_at=row.uninstalled_at,
        stamp=hashlib.sha256(
            f"{row.installed_at.isoformat()}|{row.finance_channel}|{row.settings_sealed}".encode()
        ).hexdigest(),
    )


def open_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    """What a command-line run works on: the main workspace, or ARBOT_WORKSPACE's (closing it
    closes the deployment's runtime too)."""
    main = start(settings, clock=clock)
    if not settings.workspace:
        return main
    try:
        own = Workspaces(main).runtime(settings.workspace)
    except BaseException:
        main.close()
        raise
    return replace(own, parent=main)
