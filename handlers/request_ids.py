"""A request id for every HTTP request: taken from `X-Request-ID` when a proxy sent a sane one,
made up otherwise, set in `bot.core.logs.request_id` for the request's log lines, and returned in the
response's `X-Request-ID`. One log line per request says method, route, status and duration
(the route's template, e.g. /unsubscribe/{token}, so a token in a path never reaches the log)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.middleware import Middleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core.logs import request_id

log = logging.getLogger("arbot.http")
HEADER = b"x-request-id"
ACCEPTED = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def incoming_id(scope: Scope) -> str:
    """The caller's id if it is short and plain, else a new random one."""
    for name, value in scope.get("headers", []):
        if name.lower() == HEADER:
            text = bytes(value).decode("latin-1")
            if ACCEPTED.fullmatch(text):
                return text
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The matched route's template, or "unmatched" (the raw path may carry a token). A request
    answered before routing (e.g. a body over its limit) is named by the route it was for."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    for route in getattr(scope.get("app"), "routes", ()):
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
            return route.path
    return "unmatched"


class RequestIdMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware), so the id is visible to the endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope)
        token = request_id.set(rid)
        started = time.monotonic()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s in %.0f ms",
                scope.get("method", "?"),
                route_of(scope),
                status,
                (time.monotonic() - started) * 1000,
            )
            request_id.reset(token)


def request_id_middleware() -> Middleware:
    """For `Starlette(middleware=[request_id_middleware()])`."""
    return Middleware(RequestIdMiddleware)
