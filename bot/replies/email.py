"""A customer wrote back by email: find whose reply it is, keep it, and stop automation for that
account.

Automatic replies are logged and change nothing; a mail to the unsubscribe address opts the
address out; delivery failures go to bot/replies/bounces.py. Every human reply (by email, by text,
or placed by a person) pauses the customer's waiting reminders (reason `replied`) and opens an
escalation or adds to the open one; the triage label decides what else happens (a dispute flags
the invoices, a promise pauses until its date plus grace, an opt-out is recorded).

The triage label is worked out before the write transaction opens and handed in: an LLM
classifier may take seconds, and SQLite's single writer must not wait on it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Customer, InboundMessage, Invoice, Reminder
from bot.escalations import reply_outcome, service
from bot.ledger.accounts import cancel_waiting
from bot.ledger.contact_addresses import OPTED_OUT
from bot.ledger.former_addresses import former_address, mark_former_address
from bot.reminders.delivery import unsubscribe_email
from bot.replies.bounces import handle_bounce, opt_out
from bot.replies.match import (
    InboundResult,
    ReplyRules,
    contact_for,
    match_email,
    reminder_by_token,
    stored_email,
)
from bot.replies.quoted import without_our_words
from bot.replies.storable import raw_digest, storable_email
from integrations.base.inbound import Triage

if TYPE_CHECKING:
    from integrations.base.inbound import InboundEmail

# Labels after which a person decides; none of them lets a reminder go on by itself.
LABEL_REASON = {
    "dispute": "dispute",
    "already_paid": "says it is paid",
    "promise_to_pay": "promise to pay",
    "payment_plan_request": "asks for a payment plan",
    "hardship": "hardship",
    "question": "question",
    "wrong_contact": "wrong contact",
    "opt_out": "asked to stop",
    "other": "replied",
}


def email_needs_triage(mail: InboundEmail) -> bool:
    """Whether a person may have written it (not an automatic reply, not a bounce)."""
    return mail.automatic is None and mail.bounce is None


def in_own_words(session: Session, mail: InboundEmail, secret_key: str) -> InboundEmail:
    """The mail with the reminder it answers cut out of its text, where the customer's mail client
    quoted it in a way the parser did not recognise (bot/replies/quoted.py)."""
    if not email_needs_triage(mail):
        return mail
    reminder, _, _ = match_email(session, mail, secret_key)
    if reminder is None or not reminder.body_text:
        return mail
    return replace(mail, text=without_our_words(mail.text, reminder.body_text))


def handle_email(
    session: Session,
    mail: InboundEmail,
    raw: bytes | str,
    now: datetime,
    rules: ReplyRules,
    triage: Triage | None,
) -> InboundResult:
    """Store the mail and act on it. `triage` is its label, worked out beforehand (from the
    storable text); it may be None only when `email_needs_triage(mail)` is false."""
    mail = storable_email(mail)
    seen = already_stored(session, mail, raw)
    if seen is not None:
        return InboundResult(seen, "duplicate")
    if mail.bounce is not None:
        return handle_bounce(session, mail, raw, now, rules)
    unsubscribe = reminder_by_token(mail.recipients, rules.secret_key, "unsubscribe")
    if unsubscribe is not None:
        unsubscribe_email(session, unsubscribe, now)
        reminder = session.get(Reminder, unsubscribe)
        stored = stored_email(
            mail,
            raw,
            now,
            unsubscribe,
            customer_id=reminder.customer_id if reminder else None,
            matched_by="unsubscribe",
            automatic=True,
            label="opt_out",
        )
        session.add(stored)
        session.flush()
        return InboundResult(stored.id, "opt_out", stored.customer_id)
    reminder, customer_id, how = match_email(session, mail, rules.secret_key)
    stored = stored_email(
        mail,
        raw,
        now,
        reminder.id if reminder else None,
        customer_id=customer_id,
        matched_by=how,
        automatic=mail.automatic is not None,
    )
    session.add(stored)
    session.flush()
    if mail.automatic is not None:
        audit.record(
            session,
            now,
            "reply.automatic",
            customer_id=customer_id,
            reminder_id=stored.reminder_id,
            payload={"inbound": stored.id, "why": mail.automatic, "text": mail.text[:500]},
        )
        return InboundResult(stored.id, "automatic", customer_id)
    if customer_id is None:
        audit.record(
            session,
            now,
            "reply.unmatched",
            payload={"inbound": stored.id, "sender": mail.sender, "subject": mail.subject},
        )
        stored.awaiting_slack = True
        return InboundResult(stored.id, "unmatched")
    if triage is None:
        raise ValueError("a reply from a person needs its triage: classify it before handle_email")
    contact = contact_for(session, customer_id, reminder, email=mail.sender)
    result = human_reply(session, stored, customer_id, contact, now, rules, triage)
    if contact is None and reminder is not None and triage.label == "opt_out":
        # The reminder went to an address its contact has moved from since: that address asked.
        old_address = former_address(session, reminder)
        if old_address is not None:
            mark_former_address(
                session, reminder, old_address, OPTED_OUT, now, how="asked in a reply"
            )
    return result


def already_stored(session: Session, mail: InboundEmail, raw: bytes | str) -> int | None:
    """The stored message this one is, delivered twice (a retried webhook, a mailbox poll). A
    message without a Message-ID is known again by its digest. `mail` is storable already."""
    same = (
        InboundMessage.message_id == mail.message_id
        if mail.message_id
        else InboundMessage.raw_digest == raw_digest(raw)
    )
    return session.scalar(select(InboundMessage.id).where(same).limit(1))


def human_reply(
    session: Session,
    stored: InboundMessage,
    customer_id: int,
    contact: Contact | None,
    now: datetime,
    rules: ReplyRules,
    triage: Triage,
) -> InboundResult:
    """A person's reply, whoever's channel it came by: label it, pause, act on the label, and
    open (or add to) the customer's escalation."""
    label = triage.label
    stored.label, stored.confidence, stored.promise_date = (
        label,
        triage.confidence,
        triage.promise_date,
    )
    unsure = triage.confidence < rules.min_confidence
    audit.record(
        session,
        now,
        "reply.received",
        customer_id=customer_id,
        reminder_id=stored.reminder_id,
        payload={
            "inbound": stored.id,
            "channel": stored.channel,
            "label": label,
            "confidence": round(triage.confidence, 2),
            "text": stored.text[:2000],
        },
    )
    cancelled = cancel_waiting(session, customer_id, "replied", now)
    # A low-confidence label changes nothing beyond the pause: a person reads it first. A
    # dispute or an opt-out is acted on whatever the confidence: both only ever stop messages.
    if label == "dispute":
        service.dispute(
            session,
            customer_id,
            stored.text[:500],
            now,
            numbers=_named(session, customer_id, stored.text),
        )
    elif label == "opt_out" and contact is not None:
        opt_out(session, contact, stored.channel, customer_id, now, "asked in a reply")
    elif label == "promise_to_pay" and triage.promise_date and not unsure:
        service.promise(
            session,
            customer_id,
            triage.promise_date,
            rules.grace_days,
            now,
            timezone=rules.timezone,
        )
    customer = session.get(Customer, customer_id)
    assert customer is not None
    reason = LABEL_REASON.get(label, "replied") + (" (unsure: please read)" if unsure else "")
    answered = reply_outcome.thread_of(session, stored.reminder_id)
    if (  # an answer to a reply written in a thread belongs in that thread, open again
        answered is not None
        and answered.state == "resolved"
        and service.open_for(session, customer_id) is None
    ):
        service.reopen(session, answered.id, audit.SYSTEM, now)
    escalation, _ = service.open_or_add(
        session,
        customer_id,
        f"reply: {reason}",
        now,
        detail=f"{stored.channel} from {stored.sender}",
        reminder_id=stored.reminder_id,
        owner=service.owner_for(customer, rules.routes),
        inbound_id=stored.id,
    )
    return InboundResult(stored.id, "reply", customer_id, label, escalation.id, cancelled=cancelled)


def _named(session: Session, customer_id: int, text: str) -> list[str]:
    """The customer's open invoice numbers the text mentions (all of them when it names none)."""
    numbers = session.scalars(
        select(Invoice.number).where(Invoice.customer_id == customer_id, Invoice.status == "open")
    ).all()
    return [
        n for n in numbers if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text, re.IGNORECASE)
    ]
