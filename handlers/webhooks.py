"""HTTP webhooks: Twilio delivery reports and one-click unsubscribe. Verify, parse, call bot/."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import delivery
from bot.outbox import verify_token
from bot.runtime import Runtime
from integrations.twilio_sms import valid_twilio_request


def webhook_routes(runtime: Runtime) -> list[Route]:
    settings = runtime.settings

    async def twilio_status(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        # Twilio signs the URL it called: the public one, not what a proxy forwarded to us.
        public = (settings.public_url or str(request.base_url)).rstrip("/") + request.url.path
        if request.url.query:
            public += "?" + request.url.query
        if not token or not valid_twilio_request(
            token, public, form, request.headers.get("X-Twilio-Signature", "")
        ):
            return PlainTextResponse("bad signature", status_code=403)

        def apply() -> None:
            with runtime.writing() as session:
                delivery.sms_status(
                    session,
                    form.get("MessageSid", ""),
                    form.get("MessageStatus", ""),
                    form.get("ErrorCode"),
                    runtime.clock.now(),
                    reminder_of(request, "status", request.query_params.get("r", "")),
                )

        await run_in_threadpool(apply)
        return Response(status_code=204)

    def reminder_of(
        request: Request, purpose: str = "unsubscribe", value: str | None = None
    ) -> int | None:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        given = request.path_params.get("token", "") if value is None else value
        return verify_token(secret, given, purpose) if secret and given else None

    async def unsubscribe_page(request: Request) -> Response:
        # A GET only shows a page: link scanners prefetch links (RFC 8058).
        if reminder_of(request) is None:
            return PlainTextResponse("Not found", status_code=404)
        return HTMLResponse(
            "<!doctype html><title>Unsubscribe</title><form method=post>"
            "<p>Stop receiving payment reminders by email at this address?</p>"
            "<button type=submit>Unsubscribe</button></form>"
        )

    async def unsubscribe(request: Request) -> Response:
        reminder_id = reminder_of(request)
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

    return [
        Route("/webhooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
    ]
