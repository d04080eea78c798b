"""POST /webhooks/twilio/sms (a text from a customer) and /webhooks/twilio/status (what became of
a text we sent), both signed with X-Twilio-Signature. A text is answered 200 once it is kept: one
with a NUL in it, or one that cannot be handled, too (bot/replies/flows.py).

A workspace that uninstalled arbot still takes a text that asks to stop (bot/replies/uninstalled.py)
and answers it 200 with empty TwiML: it texts nothing in the business's name any more (Twilio's
own opt-out handling confirms a STOP), and Twilio retries no inbound text whatever the answer.
Any other text is answered 404, as before."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.core.tokens import verify_token
from bot.escalations.notes import SlackOut
from bot.reminders import delivery
from bot.replies.flows import receive_sms
from bot.replies.storable import storable
from bot.replies.uninstalled import receive_opt_out_sms
from handlers.webhooks.not_served import not_installed
from integrations.base.inbound import Classifier
from integrations.twilio_sms import valid_twilio_request

log = logging.getLogger(__name__)


def sms_endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier
) -> Callable[[Request], Awaitable[Response]]:
    async def twilio_sms(request: Request) -> Response:
        form = await _signed_form(runtime.settings, request)
        if form is None:
            return PlainTextResponse("bad signature", status_code=401)
        result = await run_in_threadpool(
            receive_sms,
            runtime,
            form.get("From", ""),
            form.get("Body", ""),
            form.get("MessageSid"),
            classifier=classifier,
            slack=slack,
        )
        twiml = '<?xml version="1.0" encoding="UTF-8"?><Response>'
        if result.answer:
            twiml += f"<Message>{xml_escape(result.answer)}</Message>"
        return Response(twiml + "</Response>", media_type="application/xml")

    return twilio_sms


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def opt_out_sms_endpoint(
    runtime: Runtime, classifier: Classifier
) -> Callable[[Request], Awaitable[Response]]:
    """A text to a workspace that uninstalled arbot: only an opt-out is recorded."""

    async def twilio_sms_uninstalled(request: Request) -> Response:
        form = await _signed_form(runtime.settings, request)
        if form is None:
            return PlainTextResponse("bad signature", status_code=401)
        result = await run_in_threadpool(
            partial(
                receive_opt_out_sms,
                runtime,
                form.get("From", ""),
                form.get("Body", ""),
                form.get("MessageSid"),
                classifier=classifier,
            )
        )
        if result is None:
            return not_installed()
        return Response(EMPTY_TWIML, media_type="application/xml")

    return twilio_sms_uninstalled


def status_endpoint(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    async def twilio_status(request: Request) -> Response:
        settings = runtime.settings
        form = await _signed_form(settings, request)
        if form is None:
            return PlainTextResponse("bad signature", status_code=401)
        form = {key: storable(value) for key, value in form.items()}  # a NUL is not a 500
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        given = request.query_params.get("r", "")
        reminder_id = verify_token(secret, given, "status") if secret and given else None

        def apply() -> None:
            with runtime.writing() as session:
                delivery.sms_status(
                    session,
                    form.get("MessageSid", ""),
                    form.get("MessageStatus", ""),
                    form.get("ErrorCode"),
                    runtime.clock.now(),
                    reminder_id,
                )

        await run_in_threadpool(apply)
        return Response(status_code=204)

    return twilio_status


async def _signed_form(settings: Settings, request: Request) -> dict[str, str] | None:
    """The form, if Twilio signed it; None otherwise. Twilio signs the form's fields, so the body
    is parsed before its signature can be judged: that happens off the event loop, and not at all
    without a token and a signature."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        log.warning(
            "Twilio webhook %s refused: TWILIO_AUTH_TOKEN is unset, so its signature cannot be "
            "checked; set it to the Twilio account's auth token",
            request.url.path,
        )
        return None
    if not signature:
        log.warning("Twilio webhook %s refused: it has no X-Twilio-Signature", request.url.path)
        return None
    # Twilio signs the URL it called: the public one, not what a proxy forwarded to us.
    public = (settings.public_url or str(request.base_url)).rstrip("/") + request.url.path
    checked = public  # what the log may name: the query can carry a reminder's token
    if request.url.query:
        public += "?" + request.url.query
        checked += " (and its query)"
    body = await request.body()

    def judged() -> dict[str, str] | None:
        text = body.decode("utf-8", errors="replace")
        form = {key: values[0] for key, values in parse_qs(text, keep_blank_values=True).items()}
        if valid_twilio_request(token, public, form, signature):
            return form
        if settings.public_url:
            hint = (
                "check that ARBOT_PUBLIC_URL is the address Twilio calls and TWILIO_AUTH_TOKEN "
                "the account's auth token"
            )
        else:
            hint = (
                "ARBOT_PUBLIC_URL is unset, so that address was read from the request, and "
                "behind a proxy it may differ from the one Twilio signed (http:// for "
                "https://); set ARBOT_PUBLIC_URL to the address Twilio calls"
            )
        # Twilio does not send a text again: this line is all that is left of it.
        log.warning(
            "Twilio webhook refused: its signature does not match %s, the address checked; %s",
            checked,
            hint,
        )
        return None

    return await run_in_threadpool(judged)
