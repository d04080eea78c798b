"""The one ASGI app `arbot serve` runs: Slack at POST /slack/events, health at GET /healthz, and
room for the webhooks of later issues."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime
from handlers.webhooks import webhook_routes

DISPATCH_THREADS = 64
CLICK_THREADS = 1


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


def create_app(runtime: Runtime, bolt: App) -> Starlette:
    # Bolt's dispatch blocks until the listener acks; run it on threads of its own, off the event
    # loop, so a burst of clicks is answered side by side.
    dispatchers = ThreadPoolExecutor(max_workers=DISPATCH_THREADS, thread_name_prefix="slack")
    # Clicks already answered are handled by a few threads, so they do not crowd out the event
    # loop that is answering the next ones.
    clicks = ThreadPoolExecutor(max_workers=CLICK_THREADS, thread_name_prefix="slack-click")
    pending: set[asyncio.Future[Any]] = set()

    secret = runtime.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value() if secret else "")

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        loop = asyncio.get_running_loop()
        bolt_request = to_bolt_request(request, body)
        if is_button_click(request, body):
            # A button's ack carries nothing: answer as soon as the signature checks out (the
            # same check Bolt makes, from slack_sdk) and let Bolt run the listener meanwhile.
            if not verifier.is_valid_request(body, dict(request.headers)):
                return Response(status_code=401)
            pending.add(loop.run_in_executor(clicks, bolt.dispatch, bolt_request))
            pending_done = [f for f in pending if f.done()]
            pending.difference_update(pending_done)
            return Response(status_code=200)
        bolt_response = await loop.run_in_executor(dispatchers, bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    async def healthz(_request: Request) -> Response:
        def check() -> bool:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True

        try:
            await run_in_threadpool(check)
        except Exception as exc:  # any failure to reach the database is "unhealthy"
            return JSONResponse(
                {"status": "unhealthy", "database": str(exc)[:200]}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *webhook_routes(runtime),
        ]
    )
