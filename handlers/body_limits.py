"""Every request body has a ceiling, per route: 1 MB for Slack, Stripe, Twilio and unsubscribe
(what they send is far smaller), ARBOT_INBOUND_EMAIL_MAX_BYTES for inbound mail (its raw path and each mail service's). A request that
says it is larger (Content-Length) is refused with 413 before any of its body is read; one sent
in chunks is counted as it arrives and refused the moment it passes the limit, so no more than
the limit is ever held in memory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
SMALL_BODY_BYTES = 1024 * 1024
INBOUND_EMAIL_PATH = "/webhooks/email"
# The mail services' paths (handlers/webhooks/email_services.py) carry whole messages too.
MAIL_SERVICE_PATHS = tuple(
    f"{INBOUND_EMAIL_PATH}/{service}"
    for service in ("mailgun", "mailgun/mime", "sendgrid", "postmark", "ses")
)


@dataclass(frozen=True)
class Limit:
    max_bytes: int
    setting: str | None = None  # the setting that raises it, named in the refusal


@dataclass(frozen=True)
class BodyLimits:
    """The limit of each path (as the routes see it: without a /w/<team id> prefix)."""

    default: Limit = Limit(SMALL_BODY_BYTES)
    by_path: Mapping[str, Limit] = field(default_factory=dict)

    def for_path(self, path: str) -> Limit:
        return self.by_path.get(path, self.default)


def body_limits(inbound_email_max_bytes: int) -> BodyLimits:
    """arbot's limits: inbound mail's from its setting, every other route's 1 MB."""
    email = Limit(inbound_email_max_bytes, "ARBOT_INBOUND_EMAIL_MAX_BYTES")
    return BodyLimits(by_path=dict.fromkeys((INBOUND_EMAIL_PATH, *MAIL_SERVICE_PATHS), email))


class BodyTooLarge(Exception):
    """Raised to the endpoint that reads past its limit; the 413 has already been sent."""


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses with 413 above the route's limit, before the rest is read."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path", ""))
        try:
            declared = declared_length(scope)
        except ValueError:
            refused = PlainTextResponse(
                "Content-Length must be one whole number of bytes",
                status_code=400,
                headers={"Connection": "close"},
            )
            await refused(scope, receive, send)
            return
        if declared is not None and declared > limit.max_bytes:
            await too_large(limit)(scope, receive, send)
            return

        received = 0
        started = False  # the app has begun its answer
        refused_413 = False  # a 413 went out: the app's own answer, if any, is dropped

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused_413:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counted_receive() -> Message:
            nonlocal received, refused_413
            if received > limit.max_bytes:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    if not started:
                        await too_large(limit)(scope, receive, send)
                        refused_413 = True
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not refused_413:  # the answer had begun: only dropping the connection is left
                raise


def declared_length(scope: Scope) -> int | None:
    """The Content-Length the client declared (None when absent); ValueError when it is not one
    whole number."""
    values = {
        bytes(v).strip() for k, v in scope.get("headers", []) if k.lower() == b"content-length"
    }
    if not values:
        return None
    (value,) = values if len(values) == 1 else (b"",)
    if not (value.isdigit() and len(value) <= 18):
        raise ValueError(f"bad Content-Length: {value!r}")
    return int(value)


def too_large(limit: Limit) -> PlainTextResponse:
    text = f"The request body is larger than this address accepts ({limit.max_bytes} bytes)."
    if limit.setting:
        text += f" To accept larger ones, raise {limit.setting}."
    return PlainTextResponse(text, status_code=413, headers={"Connection": "close"})


def body_limit_middleware(limits: BodyLimits) -> Middleware:
    """For `Starlette(middleware=[request_id_middleware(), body_limit_middleware(limits)])`: after
    the request id, so the request's one log line says 413."""
    return Middleware(BodyLimitMiddleware, limits=limits)
