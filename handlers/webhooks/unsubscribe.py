"""GET and POST /unsubscribe/{token}: the one-click unsubscribe link of an email (RFC 8058)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from bot.core.runtime import Runtime
from bot.core.tokens import verify_token
from bot.reminders import delivery


def page_endpoint(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    async def unsubscribe_page(request: Request) -> Response:
        # A GET only shows a page: link scanners prefetch links (RFC 8058).
        if _reminder_of(runtime, request) is None:
            return PlainTextResponse("Not found", status_code=404)
        return HTMLResponse(
            "<!doctype html><title>Unsubscribe</title><form method=post>"
            "<p>Stop receiving payment reminders by email at this address?</p>"
            "<button type=submit>Unsubscribe</button></form>"
        )

    return unsubscribe_page


def endpoint(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    async def unsubscribe(request: Request) -> Response:
        reminder_id = _reminder_of(runtime, request)
        if reminder_id is None:
            return PlainTextResponse("Not found", status_code=404)

        def apply() -> bool:
            with runtime.writing() as session:
                return delivery.unsubscribe_email(session, reminder_id, runtime.clock.now())

        if not await run_in_threadpool(apply):
            return PlainTextResponse("Not found", status_code=404)
        return HTMLResponse(
            "<!doctype html><title>Unsubscribed</title>"
            "<p>Done: no more payment reminders by email to this address.</p>"
        )

    return unsubscribe


def _reminder_of(runtime: Runtime, request: Request) -> int | None:
    """The reminder the link's signed token names, if it verifies."""
    secret = runtime.settings.secret_key.get_secret_value() if runtime.settings.secret_key else ""
    given = request.path_params.get("token", "")
    return verify_token(secret, given, "unsubscribe") if secret and given else None
