"""Inbound mail from the mail services a business routes replies through, one path each, each
checked its own documented way before its body is read into anything heavy:

- POST /webhooks/email/mailgun (and /webhooks/email/mailgun/mime, the URL to give a route, so
  that Mailgun posts `body-mime`): the form's HMAC of timestamp and token with
  MAILGUN_WEBHOOK_SIGNING_KEY, a timestamp within 5 minutes of now and a token not seen before;
- POST /webhooks/email/sendgrid: basic auth (SENDGRID_INBOUND_USER, SENDGRID_INBOUND_PASSWORD),
  checked before the body is read; the raw message in the `email` field;
- POST /webhooks/email/postmark: basic auth (POSTMARK_INBOUND_USER, POSTMARK_INBOUND_PASSWORD),
  checked before the body is read; the message made again from the JSON (or its RawEmail);
- POST /webhooks/email/ses: an SNS message from a topic in SES_TOPIC_ARNS, its signature checked
  against SNS's certificate; a subscription is confirmed, a notification's content delivered,
  or the message SES stored in S3 read from there (SES_S3_* settings) and delivered.

Forms and JSON are read off the event loop, by a reader with bounds (integrations/inbound_mail);
the message then goes where POST /webhooks/email sends it (for a workspace that uninstalled arbot,
only an opt-out is kept)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.replies.flows import keep_unfetched
from handlers.webhooks.email import basic_auth_matches, deliver
from handlers.webhooks.not_served import not_installed
from integrations.base.inbound import Classifier
from integrations.inbound_mail import mailgun, postmark, s3, sendgrid, ses, sns
from integrations.inbound_mail.forms import FormError, read_form

log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
CLOCK_SKEW = timedelta(seconds=5)  # how far ahead of ours an SNS Timestamp may be and still count


def _refused(service: str, why: str) -> Response:
    log.warning("inbound mail from %s refused: %s", service, why)
    return PlainTextResponse("unauthorized", status_code=401)


async def _form(request: Request) -> dict[str, bytes]:
    body = await request.body()  # at most the route's limit (handlers.body_limits)
    return await run_in_threadpool(read_form, body, request.headers.get("content-type", ""))


def mailgun_endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, uninstalled: bool = False
) -> Endpoint:
    tokens = mailgun.TokenLedger()

    async def mailgun_route(request: Request) -> Response:
        key = runtime.settings.mailgun_webhook_signing_key
        if key is None or not key.get_secret_value():
            return _refused("Mailgun", "MAILGUN_WEBHOOK_SIGNING_KEY is not set")
        try:
            form = await _form(request)
        except FormError as exc:
            return _refused("Mailgun", str(exc))
        timestamp, token, signature = (
            form.get(name, b"").decode("ascii", errors="replace")
            for name in ("timestamp", "token", "signature")
        )
        now = runtime.clock.now()
        if not mailgun.signed_by_mailgun(key.get_secret_value(), timestamp, token, signature, now):
            return _refused("Mailgun", "no signature of the signing key, or a stale timestamp")
        if not tokens.first_use(token):
            return _refused("Mailgun", "a token already used (a replayed request)")
        raw = await run_in_threadpool(mailgun.message_from_form, form)
        if raw is None:
            return PlainTextResponse(
                "The form carries neither body-mime nor message-headers: forward the route to "
                "/webhooks/email/mailgun/mime.",
                status_code=400,
            )
        return await deliver(runtime, raw, classifier, slack, uninstalled)

    return mailgun_route


def sendgrid_endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, uninstalled: bool = False
) -> Endpoint:
    async def sendgrid_parse(request: Request) -> Response:
        settings = runtime.settings
        if not basic_auth_matches(
            request, settings.sendgrid_inbound_user, settings.sendgrid_inbound_password
        ):
            return _refused("SendGrid", "basic auth is not SENDGRID_INBOUND_USER's")
        try:
            form = await _form(request)
        except FormError as exc:
            return PlainTextResponse(f"Not an Inbound Parse form: {exc}.", status_code=400)
        raw = sendgrid.message_from_form(form)
        if raw is None:
            return PlainTextResponse(
                'The form has no `email` field: tick "POST the raw, full MIME message" in '
                "SendGrid's Inbound Parse settings.",
                status_code=400,
            )
        return await deliver(runtime, raw, classifier, slack, uninstalled)

    return sendgrid_parse


def postmark_endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, uninstalled: bool = False
) -> Endpoint:
    async def postmark_inbound(request: Request) -> Response:
        settings = runtime.settings
        if not basic_auth_matches(
            request, settings.postmark_inbound_user, settings.postmark_inbound_password
        ):
            return _refused("Postmark", "basic auth is not POSTMARK_INBOUND_USER's")
        body = await request.body()
        try:
            raw = await run_in_threadpool(postmark.message_from_json, body)
        except postmark.NotPostmark as exc:
            return PlainTextResponse(f"Not Postmark's inbound JSON: {exc}.", status_code=400)
        return await deliver(runtime, raw, classifier, slack, uninstalled)

    return postmark_inbound


def ses_endpoint(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, uninstalled: bool = False
) -> Endpoint:
    verifier = sns.SnsVerifier(runtime.settings.sns_api_url)
    reader = s3.reader_from(runtime.settings)

    async def ses_via_sns(request: Request) -> Response:
        topics = runtime.settings.ses_topic_arns
        if not topics:
            return _refused("SES", "SES_TOPIC_ARNS is not set")
        body = await request.body()
        try:
            message = await run_in_threadpool(sns.envelope, body)
            if message.topic_arn not in topics:
                raise sns.NotFromSns(f"topic {message.topic_arn!r} is not in SES_TOPIC_ARNS")
            await run_in_threadpool(verifier.verify, message, runtime.clock.now())
        except sns.NotFromSns as exc:
            return _refused("SES", str(exc))
        if message.type == "SubscriptionConfirmation":
            try:
                await run_in_threadpool(verifier.confirm, message)
            except (sns.NotFromSns, httpx.HTTPError) as exc:
                log.error(
                    "the SNS subscription to %s was not confirmed: %s", message.topic_arn, exc
                )
                return PlainTextResponse("the subscription could not be confirmed", 502)
            log.info("subscribed to SNS topic %s", message.topic_arn)
            return JSONResponse({"status": "subscribed"})
        if message.type == "UnsubscribeConfirmation":
            log.warning("SNS topic %s unsubscribed this endpoint", message.topic_arn)
            return JSONResponse({"status": "unsubscribed"})
        try:
            found = ses.message_from_notification(sns.fields_of(message))
        except ses.NotSesMail as exc:
            log.info("an SES notification was ignored: %s", exc)
            return JSONResponse({"status": "ignored"})
        if isinstance(found, ses.StoredInS3):
            return await _from_s3(runtime, reader, message, found, classifier, slack, uninstalled)
        return await deliver(runtime, found, classifier, slack, uninstalled)

    return ses_via_sns


async def _from_s3(
    runtime: Runtime,
    reader: s3.S3Reader | None,
    message: sns.SnsMessage,
    stored: ses.StoredInS3,
    classifier: Classifier,
    slack: SlackOut | None,
    uninstalled: bool = False,
) -> Response:
    """A message SES stored in S3: read from there and delivered like any other. When it cannot
    be read, the notification is kept for a person, saying where the message is and why; a
    passing failure (5xx, timeout) of a notification younger than SES_S3_RETRY_SECONDS is
    answered 503 instead, so that SNS delivers it again (SNS retries only 5xx and timeouts).
    For a workspace that uninstalled arbot (`uninstalled`) one that cannot be read, which may be
    no opt-out, is not kept."""
    if reader is None:
        why = (
            "arbot does not read S3 here: set SES_S3_ACCESS_KEY_ID and SES_S3_SECRET_ACCESS_KEY "
            "(a key with s3:GetObject on the bucket)"
        )
        return await _keep_unfetched(runtime, message, stored, why, slack, uninstalled)
    try:
        raw = await run_in_threadpool(
            reader.read, stored.bucket, stored.key, runtime.clock.now(), message.topic_arn
        )
    except s3.S3ReadFailed as exc:
        if exc.passing and _young(runtime, message):
            log.warning(
                "the message SES stored in S3 (bucket %s, key %s) could not be read (%s); "
                "SNS is asked to deliver the notification again",
                stored.bucket,
                stored.key,
                exc.reason,
            )
            return PlainTextResponse("S3 could not be read just now", status_code=503)
        return await _keep_unfetched(runtime, message, stored, exc.reason, slack, uninstalled)
    if not raw.strip():
        why = "the object is empty"
        return await _keep_unfetched(runtime, message, stored, why, slack, uninstalled)
    return await deliver(runtime, raw, classifier, slack, uninstalled)


def _young(runtime: Runtime, message: sns.SnsMessage) -> bool:
    """Whether SNS published the notification less than SES_S3_RETRY_SECONDS ago (its Timestamp
    stays the same through SNS's retries). One stamped well ahead of our clock is not: with the
    clocks that far apart, answering 503 could outlast SNS's retries and lose it."""
    try:
        published = datetime.fromisoformat(message.fields.get("Timestamp", ""))
    except ValueError:
        return False
    if published.tzinfo is None:
        return False
    age = runtime.clock.now() - published
    return -CLOCK_SKEW < age < timedelta(seconds=runtime.settings.ses_s3_retry_seconds)


async def _keep_unfetched(
    runtime: Runtime,
    message: sns.SnsMessage,
    stored: ses.StoredInS3,
    reason: str,
    slack: SlackOut | None,
    uninstalled: bool = False,
) -> Response:
    """The notification (which names the bucket and key) kept for a person, as a message that
    could not be read is, with where the message is and why it was not read; not for a workspace
    that uninstalled arbot (`uninstalled`)."""
    if uninstalled:
        log.warning("SES's message in S3 (bucket %s) was not read: %s", stored.bucket, reason)
        return not_installed()
    why = (
        f"SES stored this message in S3 (bucket {stored.bucket}, key {stored.key}) and arbot "
        f"could not read it: {reason}."
    )
    raw = message.message.encode("utf-8", errors="surrogateescape")
    result = await run_in_threadpool(
        partial(
            keep_unfetched,
            runtime,
            raw,
            why,
            sender=stored.sender,
            subject=stored.subject or None,
            slack=slack,
        )
    )
    return JSONResponse({"status": result.outcome, "label": result.label})


def mail_service_routes(
    runtime: Runtime, slack: SlackOut | None, classifier: Classifier, uninstalled: bool = False
) -> list[Route]:
    """`uninstalled`: for a workspace that uninstalled arbot (opt-outs only)."""
    mailgun_route = mailgun_endpoint(runtime, slack, classifier, uninstalled)
    return [
        Route("/webhooks/email/mailgun", mailgun_route, methods=["POST"]),
        Route("/webhooks/email/mailgun/mime", mailgun_route, methods=["POST"]),
        Route(
            "/webhooks/email/sendgrid",
            sendgrid_endpoint(runtime, slack, classifier, uninstalled),
            methods=["POST"],
        ),
        Route(
            "/webhooks/email/postmark",
            postmark_endpoint(runtime, slack, classifier, uninstalled),
            methods=["POST"],
        ),
        Route(
            "/webhooks/email/ses",
            ses_endpoint(runtime, slack, classifier, uninstalled),
            methods=["POST"],
        ),
    ]
