"""The one ASGI app `arbot serve` runs: Slack at POST /slack/events, health at GET /healthz (the
database, the scheduler, the last sync and plan, the send backlog), and the webhooks."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from handlers.request_ids import request_id_middleware
from handlers.slack.app import build_bolt
from handlers.slack.install import install_routes
from handlers.webhooks import webhook_routes
from handlers.workspace_routing import SlackApps, WorkspaceWebhooks
from scheduler.health import health

if TYPE_CHECKING:
    from scheduler.runner import Runner

log = logging.getLogger(__name__)
DISPATCH_THREADS = 64
CLICK_THREADS = 1
# The work behind a click waits until clicks have stopped arriving for this long, and no longer
# than the bound after its own ack.
ACKS_QUIET_SECONDS = 0.02
WORK_DELAY_BOUND_SECONDS = 0.25


def is_button_click(request: Request, body: bytes) -> bool:
    """A block_actions payload (a button), whose acknowledgement is an empty 200."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return False
    if not body.startswith(b"payload="):
        return False
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (ValueError, KeyError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("type") == "block_actions"


class AcksFirst:
    """Holds the work behind acknowledged clicks back while acks are still going out.

    Python runs one thread at a time: a listener thread working through the database takes that
    turn from the event loop, and a burst of clicks then waits for its acks. So the work for a
    click starts once no click has come in for `quiet_seconds`, or `bound_seconds` after its own
    ack, whichever is first (a steady stream of clicks delays work, never starves it)."""

    def __init__(self, quiet_seconds: float, bound_seconds: float) -> None:
        self.quiet_seconds = quiet_seconds
        self.bound_seconds = bound_seconds
        self.last_ack = 0.0

    def acked(self) -> float:
        """Note an ack going out (on the event loop); returns its time."""
        self.last_ack = time.monotonic()
        return self.last_ack

    def wait(self, acked_at: float) -> None:
        """Block this worker thread until its work may start."""
        while True:
            now = time.monotonic()
            left = min(self.last_ack + self.quiet_seconds, acked_at + self.bound_seconds) - now
            if left <= 0:
                return
            time.sleep(left)


def create_app(
    runtime: Runtime,
    bolt: App | None,
    runner: Runner | None = None,
    workspaces: Workspaces | None = None,
) -> ASGIApp:
    """The app for the main workspace (`bolt`, from SLACK_BOT_TOKEN; None when only installed
    workspaces are served) and, given `workspaces`, for every workspace installed through
    /slack/install (handlers.workspace_routing)."""
    # Bolt's dispatch blocks until the listener acks; run it on threads of its own, off the event
    # loop, so a burst of clicks is answered side by side.
    dispatchers = ThreadPoolExecutor(max_workers=DISPATCH_THREADS, thread_name_prefix="slack")
    # Clicks already answered are handled by a few threads, so they do not crowd out the event
    # loop that is answering the next ones.
    clicks = ThreadPoolExecutor(max_workers=CLICK_THREADS, thread_name_prefix="slack-click")
    pending: set[asyncio.Future[Any]] = set()
    acks_first = AcksFirst(ACKS_QUIET_SECONDS, WORK_DELAY_BOUND_SECONDS)

    secret = runtime.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value() if secret else "")

    apps = SlackApps(bolt, workspaces, build_bolt)

    def after_ack(request: Request, body: bytes, acked_at: float) -> None:
        acks_first.wait(acked_at)
        apps.dispatch(to_bolt_request(request, body))

    def finished(work: asyncio.Future[None]) -> None:
        pending.discard(work)
        if not work.cancelled() and (error := work.exception()) is not None:
            log.error("a Slack click failed after its ack", exc_info=error)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        loop = asyncio.get_running_loop()
        if is_button_click(request, body):
            # A button's ack carries nothing: answer as soon as the signature checks out (the
            # same check Bolt makes, from slack_sdk); Bolt runs the listener after the acks.
            if not verifier.is_valid_request(body, dict(request.headers)):
                return Response(status_code=401)
            work = loop.run_in_executor(
                clicks,
                contextvars.copy_context().run,
                after_ack,
                request,
                body,
                acks_first.acked(),
            )
            pending.add(work)
            work.add_done_callback(finished)
            return Response(status_code=200)
        if not verifier.is_valid_request(body, dict(request.headers)):
            return Response(status_code=401)  # before routing, which reads the database
        bolt_request = to_bolt_request(request, body)
        # The request id travels with the work, so the listener's log lines carry it.
        bolt_response = await loop.run_in_executor(
            dispatchers, contextvars.copy_context().run, apps.dispatch, bolt_request
        )
        return to_starlette_response(bolt_response)

    async def healthz(_request: Request) -> Response:
        ok, doc = await run_in_threadpool(health, runtime, runner, workspaces)
        return JSONResponse(doc, status_code=200 if ok else 503)

    installing = install_routes(runtime, workspaces) if workspaces is not None else []
    app = Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *installing,
            *webhook_routes(runtime),
        ],
        middleware=[request_id_middleware()],
    )
    if workspaces is None:
        return app
    return WorkspaceWebhooks(app, workspaces, workspace_webhooks)


def workspace_webhooks(runtime: Runtime) -> Starlette:
    """An installed workspace's webhook routes (served under /w/<team id>/)."""
    return Starlette(routes=webhook_routes(runtime), middleware=[request_id_middleware()])
