"""The one ASGI app `arbot serve` runs: Slack at POST /slack/events, health at GET /healthz (ok or
unhealthy for anyone; the database, the scheduler, the last sync and plan, the send backlog and
the workspaces for whoever holds ARBOT_HEALTH_TOKEN), and the webhooks. Every body is bounded
(handlers.body_limits), and Slack's signature is checked before a Slack body is parsed."""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import re
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.workspaces.registry import Workspaces
from handlers.body_limits import BodyLimits, body_limit_middleware, body_limits
from handlers.request_ids import request_id_middleware
from handlers.slack.app import build_bolt
from handlers.slack.install import install_routes
from handlers.webhooks import uninstalled_routes, webhook_routes
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
SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
HealthReader = Literal["anyone", "operator", "refused"]


def signed_by_slack(verifier: SignatureVerifier, request: Request, body: bytes) -> bool:
    """Slack's signature (the check Bolt makes, from slack_sdk), on the raw bytes and before
    anything else reads them. A timestamp that is not a plain number, a missing signature or a
    body that is not UTF-8 (Slack sends only UTF-8) is simply not signed."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not (SLACK_TIMESTAMP.fullmatch(timestamp) and signature.startswith("v0=")):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return verifier.is_valid(text, timestamp, signature)


def readable_by_bolt(request: Request, body: bytes) -> BoltRequest | None:
    """Bolt's request for a signed body, or None (logged, in one line) when Bolt cannot read it:
    not the JSON or form Slack sends, or a payload whose team, user or enterprise is not shaped
    like Slack's."""
    try:
        return to_bolt_request(request, body)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        log.warning("a signed Slack request could not be read: %s", type(exc).__name__)
        return None


def is_button_click(request: Request, body: bytes) -> bool:
    """A block_actions payload (a button), whose acknowledgement is an empty 200. Call only for a
    body whose signature has been checked: it parses the body."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return False
    if not body.startswith(b"payload="):
        return False
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (ValueError, KeyError, UnicodeDecodeError, RecursionError):
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

    apps = SlackApps(bolt, workspaces, build_bolt, runtime)

    def after_ack(request: Request, body: bytes, acked_at: float) -> None:
        acks_first.wait(acked_at)
        bolt_request = readable_by_bolt(request, body)
        if bolt_request is not None:
            apps.dispatch(bolt_request)

    def finished(work: asyncio.Future[None]) -> None:
        pending.discard(work)
        if not work.cancelled() and (error := work.exception()) is not None:
            log.error("a Slack click failed after its ack", exc_info=error)

    async def slack_events(request: Request) -> Response:
        body = await request.body()  # at most the route's body limit (handlers.body_limits)
        # The signature first, before the body is parsed or routed (routing reads the database).
        if not signed_by_slack(verifier, request, body):
            return Response(status_code=401)
        loop = asyncio.get_running_loop()
        if is_button_click(request, body):
            # A button's ack carries nothing: answer at once; Bolt runs the listener after the
            # acks.
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
        bolt_request = readable_by_bolt(request, body)
        if bolt_request is None:
            return PlainTextResponse("not a Slack request arbot can read", status_code=400)
        # The request id travels with the work, so the listener's log lines carry it.
        bolt_response = await loop.run_in_executor(
            dispatchers, contextvars.copy_context().run, apps.dispatch, bolt_request
        )
        return to_starlette_response(bolt_response)

    async def healthz(request: Request) -> Response:
        reader = health_reader(runtime.settings, request)
        if reader == "refused":
            return JSONResponse(
                {"detail": "Authorization must be 'Bearer ' and the value of ARBOT_HEALTH_TOKEN"},
                status_code=401,
            )
        if reader == "anyone":  # a load balancer: healthy or not, and nothing about who is served
            ok, doc = await run_in_threadpool(health, runtime, runner, None)
            # degraded is for the token holder: to a load balancer this replica is ok
            return JSONResponse(
                {"status": "ok" if ok else "unhealthy"}, status_code=200 if ok else 503
            )
        ok, doc = await run_in_threadpool(health, runtime, runner, workspaces)
        return JSONResponse(doc, status_code=200 if ok else 503)

    def finish() -> None:
        # In the order work flows: the clicks already answered hand on to Bolt's listeners,
        # which hand on to arbot's work threads.
        clicks.shutdown(wait=True)
        dispatchers.shutdown(wait=True)
        apps.finish_work()

    installing = install_routes(runtime, workspaces) if workspaces is not None else []
    limits = body_limits(runtime.settings.inbound_email_max_bytes)
    app = Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *installing,
            *webhook_routes(runtime),
        ],
        middleware=[request_id_middleware(), body_limit_middleware(limits)],
    )
    served: ASGIApp = app
    if workspaces is not None:
        served = WorkspaceWebhooks(
            app,
            workspaces,
            partial(workspace_webhooks, limits=limits),
            partial(kept_webhooks, limits=limits),
        )
    _finishers[served] = finish
    return served


# What each app made by create_app runs to finish the work it took on after its acks.
_finishers: weakref.WeakKeyDictionary[Any, Callable[[], None]] = weakref.WeakKeyDictionary()


def finish_work(app: ASGIApp) -> None:
    """Wait for the work `app` (from create_app) took on after answering Slack: the listeners a
    click started and the redraws and posts they handed on. For a server that has stopped taking
    requests, so that what a person clicked is carried out before the process ends (or, in
    tests, before the fake Slack it talks to is gone)."""
    finish = _finishers.pop(app, None)
    if finish is not None:
        finish()


def workspace_webhooks(runtime: Runtime, limits: BodyLimits) -> Starlette:
    """An installed workspace's webhook routes (served under /w/<team id>/), within the
    deployment's body limits."""
    return Starlette(
        routes=webhook_routes(runtime),
        middleware=[request_id_middleware(), body_limit_middleware(limits)],
    )


def kept_webhooks(runtime: Runtime, limits: BodyLimits) -> Starlette:
    """What a workspace that uninstalled arbot still answers under /w/<team id>/: its
    unsubscribe links, and the texts and emails that opt out."""
    return Starlette(
        routes=uninstalled_routes(runtime),
        middleware=[request_id_middleware(), body_limit_middleware(limits)],
    )


def health_reader(settings: Settings, request: Request) -> HealthReader:
    """Who asks /healthz: "anyone" (no Authorization), "operator" (the ARBOT_HEALTH_TOKEN), or
    "refused" (any other Authorization)."""
    given = request.headers.get("authorization")
    if given is None:
        return "anyone"
    scheme, _, value = given.partition(" ")
    expected = settings.health_token.get_secret_value() if settings.health_token else ""
    if (
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(value.strip().encode(), expected.encode())
    ):
        return "operator"
    return "refused"
