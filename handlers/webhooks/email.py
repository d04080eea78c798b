"""POST /webhooks/email: a raw RFC 5322 message from an inbound-mail service, behind a shared
secret (INBOUND_EMAIL_SECRET). It is read off the event loop; once it is kept (a message that
cannot be read or handled too, for a person) the answer is 200, so the service stops sending it.
A workspace that uninstalled arbot keeps only a message that opts out (bot/replies/uninstalled.py),
answered 200; anything else is answered 404, as before."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from functools import partial

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.replies.flows import receive_raw_email
from bot.replies.uninstalled import receive_opt_out_email
from handlers.webhooks.not_served import not_installed
from integrations.base.inbound import Classifier
from integrations.email_in import parse as parse_email


def endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, *, uninstalled: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """`uninstalled`: for a workspace that uninstalled arbot (opt-outs only)."""

    async def email(request: Request) -> Response:
        expected = runtime.settings.inbound_email_secret
        if expected is None or not authorized(request, expected.get_secret_value()):
            return PlainTextResponse("unauthorized", status_code=401)
        return await deliver(runtime, await request.body(), classifier, slack, uninstalled)

    return email


async def deliver(
    runtime: Runtime,
    raw: bytes,
    classifier: Classifier,
    slack: SlackOut | None,
    uninstalled: bool = False,
) -> Response:
    """A raw message, from this path or a mail service's, handed to the reply pipeline (for a
    workspace that uninstalled arbot, `uninstalled`, only an opt-out is kept)."""
    if not raw.strip():
        return PlainTextResponse("empty message", status_code=400)
    if uninstalled:
        kept = await run_in_threadpool(
            partial(receive_opt_out_email, runtime, raw, parse_email, classifier=classifier)
        )
        if kept is None:
            return not_installed()
        return JSONResponse({"status": kept.outcome, "label": kept.label})
    result = await run_in_threadpool(
        receive_raw_email, runtime, raw, parse_email, classifier=classifier, slack=slack
    )
    return JSONResponse({"status": result.outcome, "label": result.label})


def authorized(request: Request, secret: str) -> bool:
    """`Authorization: Bearer <secret>`, or Basic auth whose password is the secret (what most
    inbound-mail services can be set to send)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    given = ""
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def basic_auth_matches(request: Request, user: str | None, password: SecretStr | None) -> bool:
    """`Authorization: Basic` with exactly this user and password (both set); what a URL with
    credentials in it (https://user:password@host/...) makes a mail service send."""
    if not user or password is None or not password.get_secret_value():
        return False
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        return False
    expected = f"{user}:{password.get_secret_value()}".encode()
    return hmac.compare_digest(given, expected)
