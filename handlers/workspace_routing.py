"""Which workspace a request is for, and that workspace's handlers.

Slack: every request names its workspace (team id). A workspace installed through /slack/install
is answered by a Bolt app of its own, built on that workspace's Runtime (its own data, its own
token and settings); anything else goes to the main app (SLACK_BOT_TOKEN), which refuses a
workspace that is not its own (E9), or, with no main app, is refused here. When Slack says the
app was uninstalled, the workspace stops being served (its data stays); for the main workspace,
its token is recorded as dead (bot.core.slack_access), so nothing calls Slack with it and
/healthz says to reinstall. Either way Slack is answered 200.

Webhooks: an installed workspace's Stripe, Twilio, inbound mail and unsubscribe addresses live
under /w/<team id>/ (its ARBOT_PUBLIC_URL is the deployment's plus that prefix, so every link it
sends points there), served by that workspace's own webhook routes. One that cannot be opened is
answered 503 "unavailable" with a request id; why is in the log under that id and in /healthz,
never told to a caller who has not been authenticated yet. A workspace that uninstalled
arbot keeps its data, and of its addresses only its unsubscribe links and its inbound text and
email addresses are still answered, the latter for opt-outs alone: the reminders it sent are still
in its customers' inboxes and phones, and a number or address that asked to stop must not be
texted or mailed after a reinstall."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.request.internals import extract_team_id
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.core.slack_access import record_revoked
from bot.workspaces.open_backoff import WorkspaceUnavailable
from bot.workspaces.registry import TEAM_ID, Workspaces
from handlers.request_ids import incoming_id
from integrations.slack_chat import web_client
from integrations.slack_install import installation_store

log = logging.getLogger(__name__)
UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")
NOT_INSTALLED = "arbot is not installed in this workspace"
MAIN_TEAM_RETRY_SECONDS = 60.0
# What an uninstalled workspace still answers under /w/<team>/ (webhooks.uninstalled_routes)
KEPT_PATHS = ("unsubscribe/", "webhooks/twilio/sms", "webhooks/email")
Built = TypeVar("Built")


@runtime_checkable
class FinishesWork(Protocol):
    def finish_work(self) -> None:
        """Wait for the work taken on after acks, and take no more."""


class SlackApps:
    """The Bolt app for each workspace a Slack request can come from."""

    def __init__(
        self,
        main: App | None,
        workspaces: Workspaces | None,
        build: Callable[[Runtime, WebClient], App],
        runtime: Runtime | None = None,
    ) -> None:
        self.main = main
        self.runtime = runtime  # the main workspace's (SLACK_BOT_TOKEN)
        self.workspaces = workspaces
        self._apps = PerWorkspace(workspaces, lambda runtime: build(runtime, _client(runtime)))
        self._main_team: str | None = None
        self._main_team_asked = -MAIN_TEAM_RETRY_SECONDS

    def main_team(self) -> str | None:
        """The workspace of SLACK_BOT_TOKEN (asked once; after a failure, again a minute
        later): always the main app's, even if it was also installed through /slack/install,
        so its buttons act on the main data."""
        if self.main is None or self._main_team is not None:
            return self._main_team
        if time.monotonic() - self._main_team_asked < MAIN_TEAM_RETRY_SECONDS:
            return None
        self._main_team_asked = time.monotonic()
        try:
            self._main_team = str(self.main.client.auth_test()["team_id"])
        except Exception as exc:
            log.error("SLACK_BOT_TOKEN: auth.test failed (%s)", exc)
        return self._main_team

    def for_team(self, team_id: str | None) -> App | None:
        """The installed workspace's app, else the main app (None: no app answers)."""
        app = self._apps.get(team_id)
        if app is None or team_id == self.main_team():
            return self.main
        return app

    def finish_work(self) -> None:
        """Wait for what every app built so far took on after its acks (a server stopping)."""
        for app in [self.main, *self._apps.built()]:
            if isinstance(app, FinishesWork):
                app.finish_work()

    def dispatch(self, request: BoltRequest) -> BoltResponse:
        """Run the request through its workspace's app. Call only for a request whose Slack
        signature has been checked (an uninstall is acted on here, before Bolt sees it)."""
        body: dict[str, Any] = request.body
        if body.get("type") == "url_verification":  # Slack checking the Events URL: no team
            return BoltResponse(
                status=200,
                body=json.dumps({"challenge": body.get("challenge")}),
                headers={"content-type": "application/json"},
            )
        team_id = team_of(body)
        event = body.get("event") if isinstance(body.get("event"), dict) else None
        uninstall = event is not None and event.get("type") in UNINSTALL_EVENTS
        if uninstall and event is not None:
            # Acted on here, whichever workspace it is: no listener of ours wants it, and Slack
            # retries an event that is not answered 200.
            if bot_token_went(event) and not self._uninstalled(team_id):
                self._main_revoked(team_id, event)
            return BoltResponse(status=200, body="")
        try:
            app = self.for_team(team_id)
        except UserError as exc:  # e.g. its settings sealed under another ARBOT_SECRET_KEY
            log.error("workspace %s cannot be served: %s", team_id, exc)
            return BoltResponse(
                status=200,
                body=f"arbot cannot serve this workspace right now: {exc} "
                "Please tell whoever runs arbot.",
            )
        if app is None:
            log.warning("refused a request from workspace %s: not installed", team_id)
            return BoltResponse(status=403, body=NOT_INSTALLED)
        return app.dispatch(request)

    def _main_revoked(self, team_id: str | None, event: dict[str, Any]) -> bool:
        """The main workspace's app was uninstalled or its bot token revoked: record it (no
        Slack call is made with that token again, and /healthz says so) and answer Slack 200.
        A workspace that is not installed here and is not known to be another is the main one:
        its dead token cannot tell us its team any more."""
        if self.main is None or self.runtime is None or not team_id:
            return False
        main_team = self.main_team()
        token = self.main.client.token
        if (main_team is not None and team_id != main_team) or not token:
            return False
        with self.runtime.writing() as session:
            record_revoked(session, token, team_id, str(event["type"]), self.runtime.clock.now())
        return True

    def _uninstalled(self, team_id: str | None) -> bool:
        if self.workspaces is None or not team_id or not TEAM_ID.match(team_id):
            return False
        if not self.workspaces.record_uninstall(team_id):
            return False  # not an installed workspace (the main one's goes to its app)
        store = installation_store(self.workspaces.main)
        store.delete_bot(enterprise_id=None, team_id=team_id)
        store.delete_installation(enterprise_id=None, team_id=team_id)
        self._apps.forget(team_id)
        log.info("workspace %s uninstalled arbot; its data is kept", team_id)
        return True


class WorkspaceWebhooks:
    """ASGI: /w/<team id>/<path> is <path> in that workspace's own webhook routes; the rest
    goes to the main app."""

    def __init__(
        self,
        main_app: ASGIApp,
        workspaces: Workspaces | None,
        build: Callable[[Runtime], Starlette],
        build_kept: Callable[[Runtime], Starlette] | None = None,
    ) -> None:
        self.main_app = main_app
        self._apps = PerWorkspace(workspaces, build)
        # An uninstalled workspace's routes that still answer (its unsubscribe links, opt-outs).
        self._kept = (
            PerWorkspace(workspaces, build_kept, kept=True) if build_kept is not None else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/w/"):
            await self.main_app(scope, receive, send)
            return
        team_id, _, rest = path[len("/w/") :].partition("/")
        if not TEAM_ID.fullmatch(team_id):  # not a team id: nothing to look up
            response = JSONResponse(
                {"status": "not found", "detail": "/w/ must be followed by a Slack team id"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        try:
            app = await run_in_threadpool(self._apps.get, team_id)
            if app is None and self._kept is not None and rest.startswith(KEPT_PATHS):
                app = await run_in_threadpool(self._kept.get, team_id)
        except Exception as exc:  # installed, but cannot be opened (tried again after a wait)
            await _unavailable(team_id, exc, scope, receive, send)
            return
        if app is None:
            response = JSONResponse(
                {"status": "not found", "detail": f"no workspace {team_id} is installed here"},
                status_code=404,
            )
            await response(scope, receive, send)
            return
        inner = dict(scope, path="/" + rest, raw_path=("/" + rest).encode(), root_path="")
        await app(inner, receive, send)


async def _unavailable(
    team_id: str, exc: Exception, scope: Scope, receive: Receive, send: Send
) -> None:
    """503 to a caller nobody has authenticated yet: unavailable, and the request id under which
    the reason is logged (it may name the database, its host and user), never the reason."""
    rid = incoming_id(scope)
    tagged = {"request_id": rid}
    if isinstance(exc, WorkspaceUnavailable | UserError):  # known: one line is enough
        log.error("workspace %s cannot be served: %s", team_id, exc, extra=tagged)
    else:
        log.exception("workspace %s cannot be served", team_id, extra=tagged)
    refused = JSONResponse(
        {
            "status": "unavailable",
            "detail": "this workspace cannot be served right now; whoever runs arbot finds why "
            "in its log under this request id, or in /healthz",
            "request_id": rid,
        },
        status_code=503,
        headers={"X-Request-ID": rid},
    )
    await refused(scope, receive, send)


class PerWorkspace(Generic[Built]):
    """What is built for each installed workspace from its Runtime (its Bolt app, its webhook
    routes), kept while that Runtime stays the same and built again when it is reopened."""

    def __init__(
        self, workspaces: Workspaces | None, build: Callable[[Runtime], Built], kept: bool = False
    ) -> None:
        """`kept`: for the workspaces that uninstalled arbot (their data kept), not the
        installed ones."""
        self.workspaces = workspaces
        self.build = build
        self.kept = kept
        self._built: dict[str, tuple[Runtime, Built]] = {}
        self._lock = threading.Lock()

    def get(self, team_id: str | None) -> Built | None:
        """None unless `team_id` is an installed workspace (with `kept`, an uninstalled one);
        raises when it cannot be opened."""
        if self.workspaces is None or team_id is None:
            return None
        if self.kept:
            runtime = self.workspaces.kept_runtime(team_id)
        else:
            runtime = self.workspaces.installed_runtime(team_id)
        if runtime is None:
            return None
        with self._lock:
            held = self._built.get(team_id)
            if held is None or held[0] is not runtime:
                held = (runtime, self.build(runtime))
                self._built[team_id] = held
            return held[1]

    def built(self) -> list[Built]:
        """What has been built so far, for every workspace."""
        with self._lock:
            return [built for _, built in self._built.values()]

    def forget(self, team_id: str) -> None:
        with self._lock:
            self._built.pop(team_id, None)


def bot_token_went(event: dict[str, Any]) -> bool:
    """An app_uninstalled, or a tokens_revoked naming the bot (when only users' tokens went, the
    bot still works)."""
    if event.get("type") != "tokens_revoked":
        return True
    tokens = event.get("tokens")
    return isinstance(tokens, dict) and bool(tokens.get("bot"))


def team_of(body: dict[str, Any]) -> str | None:
    """The team id a Slack payload names (Bolt's reading), or None when it names none or names
    something that is not a team id."""
    try:
        team_id = extract_team_id(body)
    except (AttributeError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return team_id if isinstance(team_id, str) and TEAM_ID.fullmatch(team_id) else None


def _client(runtime: Runtime) -> WebClient:
    token = runtime.settings.slack_bot_token
    return web_client(token.get_secret_value() if token else "", runtime.settings.slack_api_url)
