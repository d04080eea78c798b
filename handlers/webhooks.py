"""HTTP webhooks: Stripe payments, Twilio delivery reports and one-click unsubscribe. Verify,
parse, call bot/, then tell Slack what changed."""

from __future__ import annotations

import base64
import hmac
import logging
from datetime import datetime
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.core.models import Escalation, StripeEvent
from bot.core.runtime import Runtime
from bot.core.tokens import verify_token
from bot.escalations import notes
from bot.escalations import posting as escalation_posting
from bot.payments import stripe_events as stripe_webhook
from bot.planning import posting
from bot.reminders import delivery
from bot.replies.email import email_needs_triage, handle_email
from bot.replies.match import InboundResult, ReplyRules
from bot.replies.sms import handle_sms, sms_needs_triage
from bot.replies.triage import RuleClassifier
from integrations.email_in import parse as parse_email
from integrations.llm import classifier_from
from integrations.slack_chat import SlackChat, chat_from
from integrations.stripe_events import InvalidStripeEvent, verify
from integrations.stripe_links import links_from
from integrations.twilio_sms import valid_twilio_request

log = logging.getLogger(__name__)


def slack_out(runtime: Runtime) -> SlackChat | None:
    token = runtime.settings.slack_bot_token
    return chat_from(token.get_secret_value() if token else None, runtime.settings.slack_api_url)


def webhook_routes(runtime: Runtime, slack: SlackChat | None = None) -> list[Route]:
    settings = runtime.settings
    slack = slack or slack_out(runtime)
    escalation_channel = settings.escalation_channel or settings.finance_channel
    classifier = classifier_from(settings, RuleClassifier())
    rules = ReplyRules.from_settings(settings)
    stripe_key = settings.stripe_api_key
    links = links_from(
        stripe_key.get_secret_value() if stripe_key else None, settings.stripe_api_base
    )

    async def stripe(request: Request) -> Response:
        secret = settings.stripe_webhook_secret
        body = await request.body()
        try:
            event = verify(
                body,
                request.headers.get("Stripe-Signature"),
                secret.get_secret_value() if secret else "",
            )
        except InvalidStripeEvent as exc:
            log.warning("Stripe webhook refused: %s", exc)
            return PlainTextResponse("invalid signature", status_code=400)

        def apply() -> stripe_webhook.StripeResult:
            now = runtime.clock.now()
            try:
                with runtime.writing() as session:
                    result = stripe_webhook.apply_event(
                        session, event, now, dict(settings.escalation_routes)
                    )
            except IntegrityError:
                with runtime.sessions() as session:
                    if session.get(StripeEvent, event.id) is None:
                        raise  # not the event stored twice: a real error, and Stripe retries
                # the same event, stored a moment ago by another replica
                return stripe_webhook.StripeResult("duplicate", f"event {event.id} was handled")
            if result.status == "applied":
                # The ledger is right from here on: Stripe gets its 2xx whatever Slack or the
                # link deactivation do; what they miss, the sweep and the next payment catch up.
                try:
                    stripe_followups(result, now)
                except Exception:
                    log.exception("after Stripe event %s: Slack or Stripe not updated", event.id)
            return result

        def stripe_followups(result: stripe_webhook.StripeResult, now: datetime) -> None:
            with runtime.writing() as session:
                notes.after_payment(session, slack, result.outcome, settings.timezone, links, now)
            with runtime.writing() as session:
                posted = notes.post_escalations(
                    session,
                    slack,
                    escalation_channel,
                    runtime.today(),
                    settings.timezone,
                    dict(settings.escalation_routes),
                    now,
                )
                if slack is not None and result.escalation_id not in (None, *posted):
                    escalation = session.get(Escalation, result.escalation_id)
                    if escalation is not None:
                        escalation_posting.note(
                            session, slack, escalation.customer_id, f":warning: {result.detail}"
                        )

        result = await run_in_threadpool(apply)
        log.info("Stripe event %s %s: %s", event.id, result.status, result.detail)
        return JSONResponse({"status": result.status, "detail": result.detail})

    def tell_slack(result: InboundResult) -> None:
        """After the reply is stored: re-draw cancelled cards, post the escalation (or the
        unmatched message), so a person sees it."""
        if result.outcome == "unmatched":
            notes.post_unmatched(runtime, slack, settings.finance_channel, [result.message_id])
            return
        with runtime.writing() as session:
            if result.cancelled and slack is not None:
                posting.refresh(session, slack, result.cancelled, settings.timezone)
            posted = notes.post_escalations(
                session,
                slack,
                escalation_channel,
                runtime.today(),
                settings.timezone,
                dict(settings.escalation_routes),
                runtime.clock.now(),
            )
            # An escalation posted just now shows the reply already; an older one hears of it.
            if result.escalation_id not in (None, *posted) and slack is not None:
                assert result.escalation_id is not None and result.customer_id is not None
                escalation_posting.redraw(
                    session, slack, result.escalation_id, runtime.today(), settings.timezone
                )
                escalation_posting.note(
                    session,
                    slack,
                    result.customer_id,
                    notes.reply_note(session, result.message_id, result.label),
                )

    async def email(request: Request) -> Response:
        expected = settings.inbound_email_secret
        if expected is None or not authorized(request, expected.get_secret_value()):
            return PlainTextResponse("unauthorized", status_code=401)
        raw = await request.body()
        if not raw.strip():
            return PlainTextResponse("empty message", status_code=400)
        mail = parse_email(raw)

        def apply() -> InboundResult:
            needed = email_needs_triage(mail)
            triage = classifier.classify(mail.text, runtime.today()) if needed else None
            with runtime.writing() as session:
                result = handle_email(
                    session,
                    mail,
                    raw.decode("utf-8", errors="replace"),
                    runtime.clock.now(),
                    rules,
                    triage,
                )
            notify(result)
            return result

        result = await run_in_threadpool(apply)
        return JSONResponse({"status": result.outcome, "label": result.label})

    async def twilio_sms(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
        if not twilio_signed(request, form):
            return PlainTextResponse("bad signature", status_code=401)

        def apply() -> InboundResult:
            body = form.get("Body", "")
            needed = sms_needs_triage(body)
            triage = classifier.classify(body.strip(), runtime.today()) if needed else None
            with runtime.writing() as session:
                result = handle_sms(
                    session,
                    form.get("From", ""),
                    body,
                    form.get("MessageSid"),
                    runtime.clock.now(),
                    rules,
                    triage,
                    settings.business_name,
                )
            notify(result)
            return result

        result = await run_in_threadpool(apply)
        twiml = '<?xml version="1.0" encoding="UTF-8"?><Response>'
        if result.answer:
            twiml += f"<Message>{xml_escape(result.answer)}</Message>"
        return Response(twiml + "</Response>", media_type="application/xml")

    def notify(result: InboundResult) -> None:
        try:
            tell_slack(result)
        except Exception:  # the reply is stored; the sweep posts what Slack did not get
            log.exception("Slack not told about inbound message %s", result.message_id)

    def twilio_signed(request: Request, form: dict[str, str]) -> bool:
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        # Twilio signs the URL it called: the public one, not what a proxy forwarded to us.
        public = (settings.public_url or str(request.base_url)).rstrip("/") + request.url.path
        if request.url.query:
            public += "?" + request.url.query
        return bool(token) and valid_twilio_request(
            token, public, form, request.headers.get("X-Twilio-Signature", "")
        )

    async def twilio_status(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
        if not twilio_signed(request, form):
            return PlainTextResponse("bad signature", status_code=401)

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
        Route("/webhooks/stripe", stripe, methods=["POST"]),
        Route("/webhooks/email", email, methods=["POST"]),
        Route("/webhooks/twilio/sms", twilio_sms, methods=["POST"]),
        Route("/webhooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
    ]


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
