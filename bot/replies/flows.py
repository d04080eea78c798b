"""A message from a customer, told once: the email webhook and `arbot poll-inbox` call
`receive_email`, the Twilio webhook `receive_sms`.

The message is labelled first (an LLM classifier may take seconds, and SQLite's single writer must
not wait on it), then stored and acted on in one write transaction. Only after that commit is Slack
told: the plan cards of the reminders it paused are re-drawn, a new escalation is posted, an open
one is re-drawn and hears the reply in its thread, and a message nobody could place goes to the
finance channel. The message is stored whatever Slack does; what Slack misses, the sweep posts.

Every text is made storable first (bot/replies/storable.py: a NUL or a lone surrogate becomes
U+FFFD), and labelled and acted on as such. A message that still cannot be read, labelled or
stored is kept as it came and handed to a person (bot/replies/unreadable.py); only when even that
fails (the database is down) does the caller see the error, so the sender delivers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.core.models import InboundMessage
from bot.core.runtime import Runtime
from bot.escalations import notes, reply_outcome, thread_notes
from bot.escalations import posting as escalation_posting
from bot.escalations.notes import SlackOut
from bot.planning import posting
from bot.replies.email import email_needs_triage, handle_email, in_own_words
from bot.replies.match import InboundResult, ReplyRules
from bot.replies.sms import handle_sms, sms_needs_triage
from bot.replies.storable import storable, storable_email
from bot.replies.unreadable import UNREADABLE, keep_unreadable
from integrations.base.inbound import Classifier

if TYPE_CHECKING:
    from integrations.base.inbound import InboundEmail

log = logging.getLogger(__name__)


def receive_raw_email(
    runtime: Runtime,
    raw: bytes,
    read: Callable[[bytes], InboundEmail],
    *,
    classifier: Classifier,
    slack: SlackOut | None,
) -> InboundResult:
    """An email as it arrived, read by `read` (the mail adapter's parser), then as
    `receive_email`. One that cannot be read is kept for a person."""
    try:
        mail = read(raw)
    except Exception as exc:
        result = _keep(runtime, "email", raw, exc, "reading it")
        tell_slack(runtime, result, slack)
        return result
    return receive_email(runtime, mail, raw, classifier=classifier, slack=slack)


def receive_email(
    runtime: Runtime,
    mail: InboundEmail,
    raw: bytes | str,
    *,
    classifier: Classifier,
    slack: SlackOut | None,
) -> InboundResult:
    """An email (parsed, and `raw` as received): stored once, acted on, and Slack told."""
    mail = storable_email(mail)
    try:
        today = runtime.today()
        rules = ReplyRules.from_settings(runtime.settings)
        with runtime.sessions() as session:
            mail = in_own_words(session, mail, rules.secret_key)
        triage = classifier.classify(mail.text, today) if email_needs_triage(mail) else None
        with runtime.writing() as session:
            result = handle_email(session, mail, raw, runtime.clock.now(), rules, triage)
    except Exception as exc:
        result = _keep(
            runtime,
            "email",
            raw,
            exc,
            "handling it",
            sender=mail.sender,
            subject=mail.subject,
            message_id=mail.message_id,
            text=mail.text,
        )
    tell_slack(runtime, result, slack)
    return result


def receive_sms(
    runtime: Runtime,
    sender: str,
    body: str,
    provider_id: str | None,
    *,
    classifier: Classifier,
    slack: SlackOut | None,
) -> InboundResult:
    """A text from `sender` (Twilio's MessageSid as `provider_id`): stored once, acted on, and
    Slack told. The result's `answer` is what to text back, if anything."""
    try:
        today = runtime.today()
        text = storable(body).strip()
        triage = classifier.classify(text, today) if sms_needs_triage(text) else None
        settings = runtime.settings
        rules = ReplyRules.from_settings(settings)
        with runtime.writing() as session:
            result = handle_sms(
                session,
                sender,
                body,
                provider_id,
                runtime.clock.now(),
                rules,
                triage,
                settings.business_name,
            )
    except Exception as exc:
        result = _keep(
            runtime, "sms", body, exc, "handling it", sender=sender, message_id=provider_id
        )
    tell_slack(runtime, result, slack)
    return result


def keep_unfetched(
    runtime: Runtime,
    notice: bytes | str,
    why: str,
    *,
    sender: str = "",
    subject: str | None = None,
    slack: SlackOut | None,
) -> InboundResult:
    """An email arbot was told of but could not fetch (a message a mail service stored elsewhere):
    the notice is kept for a person, `why` (where the message is and why it was not read, in
    words) as its text, and the finance channel told."""
    with runtime.writing() as session:
        result = keep_unreadable(
            session,
            "email",
            notice,
            runtime.clock.now(),
            why,
            sender=sender,
            subject=subject,
            text=why,
        )
    log.warning("inbound email %s kept for a person: %s", result.message_id, why)
    tell_slack(runtime, result, slack)
    return result


def _keep(
    runtime: Runtime,
    channel: str,
    raw: bytes | str,
    failure: Exception,
    step: str,
    *,
    sender: str = "",
    subject: str | None = None,
    message_id: str | None = None,
    text: str | None = None,
) -> InboundResult:
    """Keep a message whose `step` failed, for a person; the failure is logged with its id."""
    why = f"{step} failed ({type(failure).__name__})"
    with runtime.writing() as session:
        result = keep_unreadable(
            session,
            channel,
            raw,
            runtime.clock.now(),
            why,
            sender=sender,
            subject=subject,
            message_id=message_id,
            text=text,
        )
    log.error(
        "inbound %s %s could not be handled: %s; kept for a person to read",
        channel,
        result.message_id,
        why,
        exc_info=failure,
    )
    return result


def tell_slack(runtime: Runtime, result: InboundResult, slack: SlackOut | None) -> None:
    """After the message is stored, with no transaction open: what Slack is told of it."""
    try:
        _tell_slack(runtime, result, slack)
    except Exception:  # the message is stored; the sweep posts what Slack did not get
        log.exception("Slack not told about inbound message %s", result.message_id)


def _tell_slack(runtime: Runtime, result: InboundResult, slack: SlackOut | None) -> None:
    settings = runtime.settings
    if result.outcome in ("unmatched", UNREADABLE):
        notes.post_unmatched(runtime, slack, settings.finance_channel, [result.message_id])
        return
    if slack is None:
        return
    if result.cancelled:
        with runtime.sessions() as session:
            posting.refresh(session, slack, result.cancelled, settings.timezone)
    if result.outcome == "bounce":  # a reply written in a thread: that thread hears it failed
        with runtime.sessions() as session:
            bounced = session.get(InboundMessage, result.message_id)
            if bounced is not None and bounced.reminder_id is not None:
                reply_outcome.tell_threads(
                    session, slack, [bounced.reminder_id], settings.timezone, failed_only=True
                )
    posted = escalation_posting.post_new(runtime, slack)
    # An escalation posted just now shows the reply already; an older one hears of it: the note
    # its reason owes the thread (bot/escalations/thread_notes.py; the sweep's if Slack refuses).
    if result.escalation_id not in (None, *posted):
        assert result.escalation_id is not None
        with runtime.sessions() as session:
            escalation_posting.redraw(
                session, slack, result.escalation_id, runtime.today(), settings.timezone
            )
    thread_notes.post_owed(runtime, slack)
