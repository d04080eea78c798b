"""A reply to the customer written in an escalation's thread.

`draft` prepares the Reply form: who it goes to, the subject, a suggested answer for what the
customer said (a dispute acknowledged, a promise confirmed, the payment details...), the
customer's message it answers (In-Reply-To, References), and, when it cannot go at all (the
contact opted out of email, the address bounced, there is none), why. `queue` stores it as an
approved reminder of the step `thread_reply`: the outbox sends it like any other, exactly once
(the same claim, `sending` committed before SMTP is called), inside the contact's sending hours
(at night it waits for the morning), from an address whose `+r.` token brings the customer's
answer back to this customer's thread. A double submit of the same form stores one reply.

The form lists the customer's open invoices to attach copies of (PDF); they are ticked already
when the customer's message asks for a copy. The ticked ones are stored with the reply
(`reminder_attachments`) and the outbox sends it with them, or not at all
(bot/reminders/attaching.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from email.parser import HeaderParser

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import (
    Contact,
    Customer,
    InboundMessage,
    Invoice,
    Reminder,
    ReminderAttachment,
    ThreadReply,
)
from bot.core.money import format_money
from bot.core.vocabulary import THREAD_REPLY, Channel, ReminderAction, ReminderState
from bot.escalations.service import load, open_invoices
from bot.planning.send_window import Window, candidate_zones, next_send_time
from bot.replies.match import MESSAGE_ID
from playbooks.lint import forbidden_phrases

SUBJECT_LIMIT = 150  # as the Edit form's (integrations/base/slack.py)
TEXT_LIMIT = 3000
KEPT_REFERENCES = 20  # the thread's newest Message-IDs carried in References
OPT_OUT_LINE = 'To stop these emails, reply with "unsubscribe".'
# The customer asks for a copy of an invoice: "could you resend the invoice?", "a PDF please"
ASKS_FOR_A_COPY = re.compile(
    r"\b(?:cop(?:y|ies)|pdfs?|duplicate|re-?send|re-?issue)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class CopyChoice:
    """An open invoice whose copy the reply may carry."""

    invoice_id: int
    text: str  # "INV-1042: $1,200.00, due 2026-03-09"


@dataclass(frozen=True)
class ReplyDraft:
    escalation_id: int
    customer_name: str
    contact_id: int | None
    contact_name: str | None
    to: str | None
    blocked: str | None  # why no reply can go by email (opted out, bounced, no address)
    subject: str
    text: str  # the suggested answer
    send_at: datetime | None  # when it would go: None now, else when the sending hours open
    zone: str | None  # the contact's timezone, to say when in their time
    in_reply_to: str | None
    references: str | None
    inbound_id: int | None
    copies: tuple[CopyChoice, ...] = ()  # the open invoices whose copies it may carry
    copies_asked: bool = False  # the customer asked for a copy: the form ticks them all


@dataclass(frozen=True)
class Queued:
    reminder_id: int
    to: str
    send_at: datetime | None  # None: goes out with the next send run (within a minute)
    new: bool  # False: this form was submitted already; nothing more was stored


def draft(
    session: Session, escalation_id: int, now: datetime, window: Window, business: str
) -> ReplyDraft:
    escalation = load(session, escalation_id)
    customer = session.get(Customer, escalation.customer_id)
    assert customer is not None
    message = _their_message(session, customer.id)
    contact = _contact(session, customer.id, message)
    blocked = _blocked(contact, customer.name)
    in_reply_to, references, subject = _conversation(session, customer.id, message)
    zones = candidate_zones(
        (contact.timezone if contact else None) or customer.timezone,
        contact.phone if contact else None,
    )
    send_at = next_send_time(now, zones, window) if zones else None
    if blocked is None and send_at is None:
        blocked = (
            "No sending hours are known for this contact's timezone, so nothing can be sent "
            "from here: set the customer's timezone in the ledger."
        )
    invoices = open_invoices(session, customer.id)
    asked = message is not None and bool(ASKS_FOR_A_COPY.search(message.text or ""))
    return ReplyDraft(
        escalation_id=escalation.id,
        customer_name=customer.name,
        contact_id=contact.id if contact else None,
        contact_name=contact.name if contact else None,
        to=contact.email if contact else None,
        blocked=blocked,
        subject=subject[:SUBJECT_LIMIT],
        text=suggested(
            message.label if message else None,
            contact.name if contact else None,
            invoices,
            message.promise_date if message else None,
            business,
            copies_asked=asked,
        )[:TEXT_LIMIT],
        send_at=None if send_at is None or send_at <= now else send_at,
        zone=zones[0] if zones else None,
        in_reply_to=in_reply_to,
        references=references,
        inbound_id=message.id if message else None,
        copies=tuple(
            CopyChoice(
                i.id,
                f"{i.number}: {format_money(i.balance, i.currency)}, due {i.due_date.isoformat()}",
            )
            for i in invoices
        ),
        copies_asked=asked and bool(invoices),
    )


def reply_contact(session: Session, customer_id: int) -> Contact | None:
    """The contact a reply from the thread goes to."""
    return _contact(session, customer_id, _their_message(session, customer_id))


def _their_message(session: Session, customer_id: int) -> InboundMessage | None:
    """The customer's latest email written by a person (not an auto-reply)."""
    return session.scalars(
        select(InboundMessage)
        .where(
            InboundMessage.customer_id == customer_id,
            InboundMessage.channel == Channel.EMAIL,
            InboundMessage.automatic.is_(False),
        )
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
    ).first()


def _contact(session: Session, customer_id: int, message: InboundMessage | None) -> Contact | None:
    """Who wrote (the contact of the reminder they answered, or of their address), else the
    billing contact, else the first with an email address."""
    if message is not None and message.reminder_id is not None:
        reminder = session.get(Reminder, message.reminder_id)
        if reminder is not None and reminder.contact_id is not None:
            contact = session.get(Contact, reminder.contact_id)
            if contact is not None and contact.email:
                return contact
    contacts = list(
        session.scalars(
            select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)
        )
    )
    if message is not None and message.sender:
        sender = message.sender.lower()
        for contact in contacts:
            if contact.email and contact.email.lower() == sender:
                return contact
    with_email = [c for c in contacts if c.email]
    billing = [c for c in with_email if c.role == "billing"]
    chosen = billing or with_email or contacts
    return chosen[0] if chosen else None


def _blocked(contact: Contact | None, customer: str) -> str | None:
    if contact is None or not contact.email:
        return f"{customer} has no email address on file: add one in the ledger to reply."
    who = contact.name or contact.email
    if contact.email_opted_out_at is not None:
        return (
            f"{who} opted out of email on {contact.email_opted_out_at:%Y-%m-%d}: no reply can "
            "be sent to them from here. Reach them another way (a call) if it is needed."
        )
    if contact.email_unusable_at is not None:
        return (
            f"{contact.email} bounced on {contact.email_unusable_at:%Y-%m-%d}: correct the "
            "address in the ledger before replying."
        )
    return None


def _conversation(
    session: Session, customer_id: int, message: InboundMessage | None
) -> tuple[str | None, str | None, str]:
    """(In-Reply-To, References, subject) of an answer to the customer's message, or, when they
    never wrote, to the last email arbot sent them."""
    if message is not None and message.message_id:
        ids = [*_references_of(message.raw), message.message_id.strip()]
        return message.message_id.strip(), _joined(ids), _re(message.subject or "")
    last = session.scalars(
        select(Reminder)
        .where(
            Reminder.customer_id == customer_id,
            Reminder.channel == Channel.EMAIL,
            Reminder.state == ReminderState.SENT,
            Reminder.message_id.is_not(None),
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
    ).first()
    if last is not None and last.message_id:
        return last.message_id, last.message_id, _re(last.subject or "")
    return None, None, "Your account with us"


def _references_of(raw: str) -> list[str]:
    headers = HeaderParser().parsestr(raw, headersonly=True)
    found: list[str] = []
    for name in ("References", "In-Reply-To"):
        for value in headers.get_all(name) or []:
            found.extend(MESSAGE_ID.findall(str(value)))
    return found


def _joined(ids: list[str]) -> str:
    unique = list(dict.fromkeys(ids))
    return " ".join(unique[-KEPT_REFERENCES:])


def _re(subject: str) -> str:
    subject = " ".join(subject.split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def suggested(
    label: str | None,
    name: str | None,
    invoices: list[Invoice],
    promised: date | None,
    business: str,
    copies_asked: bool = False,
) -> str:
    """A first answer for what the customer said; the person edits it before it goes."""
    numbers = ", ".join(i.number for i in invoices) or "your account"
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        totals[invoice.currency] += invoice.balance
    amount = ", ".join(format_money(v, k) for k, v in sorted(totals.items()))
    details = "\n".join(
        f"- {i.number}: {format_money(i.balance, i.currency)}, due {i.due_date.isoformat()}"
        + (f"\n  Pay online: {i.payment_link}" if i.payment_link else "")
        for i in invoices
    )
    if label == "dispute":
        body = (
            f"Thank you for letting us know about {numbers}. We have noted your dispute and "
            "put our reminders on hold while we look into it. We will come back to you as soon "
            "as we have checked."
        )
    elif label == "promise_to_pay":
        by = f" by {promised:%A %-d %B}" if promised else ""
        body = (
            f"Thank you for confirming that you will pay {numbers} ({amount}){by}. We have "
            "noted it and will not send reminders before then.\n\n" + details
        )
    elif label == "already_paid":
        body = (
            f"Thank you for letting us know. We have not yet matched a payment for {numbers}: "
            "could you send us its date, amount and reference so that we can find it?"
        )
    elif label == "payment_plan_request":
        body = (
            f"Thank you for your message. We are happy to discuss paying {numbers} ({amount}) "
            "in instalments: what schedule would work for you?"
        )
    elif label == "hardship":
        body = (
            "Thank you for telling us. We understand, and would like to find a way that works "
            "for you: could we arrange a short call this week?"
        )
    elif copies_asked and invoices:
        body = (
            f"Thank you for your message. Please find attached a copy of {numbers}.\n\n" + details
        )
    elif label == "wrong_contact":
        body = (
            "Thank you, and sorry for the trouble. Could you tell us who looks after invoices "
            "on your side, so that we write to them instead?"
        )
    else:
        body = f"Thank you for your message. Here are the details of what is open:\n\n{details}"
    hello = f"Hello {name.split()[0]}," if name else "Hello,"
    return f"{hello}\n\n{body}\n\nBest regards,\n{business}"


def problems(subject: str, text: str) -> dict[str, str]:
    """What stops this reply, by the form's field: empty, too long, or a phrase no message of
    ours may carry (playbooks/lint.py)."""
    found: dict[str, str] = {}
    for field, value, limit in (("subject", subject, SUBJECT_LIMIT), ("body", text, TEXT_LIMIT)):
        phrases = forbidden_phrases(value)
        if not value.strip():
            found[field] = "Write something here."
        elif len(value) > limit:
            found[field] = f"At most {limit:,} characters ({len(value):,} now)."
        elif phrases:
            found[field] = "No message of ours may mention " + "; ".join(phrases) + "."
    return found


def with_opt_out(text: str) -> str:
    """The text with the opt-out line every email carries, unless it has one already."""
    lowered = text.lower()
    if "unsubscribe" in lowered or "opt out" in lowered:
        return text
    return f"{text.rstrip()}\n\n{OPT_OUT_LINE}"


def queue(
    session: Session,
    escalation_id: int,
    user: str,
    subject: str,
    text: str,
    form_key: str,
    now: datetime,
    today: date,
    window: Window,
    business: str,
    attach: Sequence[int] = (),
) -> Queued:
    """Store the reply as an approved reminder for the outbox, once per `form_key` (the Slack
    view's id): the same form submitted twice stores it once, with the copies of the invoices
    in `attach` (the customer's open invoices only). UserError when it cannot go."""
    key = f"{THREAD_REPLY}:{form_key}"
    found = _by_key(session, key)
    if found is not None:
        return found
    plan = draft(session, escalation_id, now, window, business)
    if plan.blocked is not None or plan.to is None or plan.contact_id is None:
        raise UserError(f"Nothing was sent: {plan.blocked}")
    wrong = problems(subject, text)
    if wrong:
        raise UserError("Nothing was sent: " + " ".join(wrong.values()))
    offered = {c.invoice_id for c in plan.copies}
    if not set(attach) <= offered:
        raise UserError(
            "Nothing was sent: an invoice ticked to attach is no longer open; open Reply again"
        )
    escalation = load(session, escalation_id)
    reminder = Reminder(
        customer_id=escalation.customer_id,
        contact_id=plan.contact_id,
        channel=Channel.EMAIL,
        plan_date=today,
        step_key=THREAD_REPLY,
        action=ReminderAction.REMIND,
        state=ReminderState.APPROVED,
        idempotency_key=key,
        subject=subject,
        body_text=with_opt_out(text),
        send_after=plan.send_at,
        approved_by=user,
        approved_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(reminder)
            session.flush()
    except IntegrityError:  # the same form, submitted at the same moment by a second request
        again = _by_key(session, key)
        if again is None:
            raise
        return again
    session.add(
        ThreadReply(
            reminder_id=reminder.id,
            escalation_id=escalation_id,
            inbound_id=plan.inbound_id,
            in_reply_to=plan.in_reply_to,
            references=plan.references,
            written_by=user,
            created_at=now,
        )
    )
    for invoice_id in sorted(set(attach)):
        session.add(ReminderAttachment(reminder_id=reminder.id, invoice_id=invoice_id))
    audit.record(
        session,
        now,
        "reply.written",
        actor=user,
        customer_id=escalation.customer_id,
        reminder_id=reminder.id,
        payload={
            "escalation": escalation_id,
            "to": plan.to,
            "subject": subject,
            "text": text[:TEXT_LIMIT],
            "send_after": plan.send_at.isoformat() if plan.send_at else None,
            "copies": [c.text.split(":", 1)[0] for c in plan.copies if c.invoice_id in attach],
        },
    )
    return Queued(reminder.id, plan.to, plan.send_at, True)


def _by_key(session: Session, key: str) -> Queued | None:
    row = session.execute(
        select(Reminder.id, Reminder.send_after, Contact.email)
        .join(Contact, Contact.id == Reminder.contact_id)
        .where(Reminder.idempotency_key == key)
    ).first()
    if row is None:
        return None
    return Queued(row[0], row[2] or "", row[1], False)
