"""A customer wrote back: find whose reply it is, keep it, and stop automation for that account.

Email is matched by the signed Reply-To token, else by In-Reply-To/References against the
Message-IDs arbot sent, else by the sender's address; SMS by the sender's number. What matches
nothing is kept and shown to a person to assign. Automatic replies are logged and change
nothing; delivery failures mark the address as bouncing, fail the reminder and escalate. Every
human reply pauses the customer's waiting reminders (reason `replied`) and opens an escalation
or adds to the open one; the triage label decides what else happens (a dispute flags the
invoices, a promise pauses until its date plus grace, an opt-out is recorded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Contact, Customer, InboundMessage, Reminder
from bot.escalations import service
from bot.ledger.accounts import cancel_waiting
from bot.replies.triage import Classifier, Triage

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from integrations.email_in import InboundEmail

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
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


@dataclass(frozen=True, slots=True)
class ReplyRules:
    secret_key: str
    grace_days: int = 2
    min_confidence: float = 0.6
    routes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyRules:
        return cls(
            secret_key=settings.secret_key.get_secret_value() if settings.secret_key else "",
            grace_days=settings.promise_grace_days,
            min_confidence=settings.triage_min_confidence,
            routes=dict(settings.escalation_routes),
        )


class Pretriaged:
    """A label worked out before the write transaction opens: an LLM classifier may take seconds,
    and SQLite's single writer must not wait on it."""

    def __init__(self, result: Triage) -> None:
        self.result = result

    def classify(self, text: str, today: date) -> Triage:
        return self.result


def triage_first(classifier: Classifier, text: str, today: date, needed: bool) -> Classifier:
    return Pretriaged(classifier.classify(text, today)) if needed else classifier


def email_needs_triage(mail: InboundEmail) -> bool:
    return mail.automatic is None and mail.bounce is None


def sms_needs_triage(body: str) -> bool:
    word = body.strip().upper().rstrip(".!")
    return word not in STOP_WORDS | START_WORDS | HELP_WORDS


@dataclass
class InboundResult:
    message_id: int
    # "reply" | "automatic" | "bounce" | "unmatched" | "opt_out" | "opt_in" | "help" | "duplicate"
    outcome: str
    customer_id: int | None = None
    label: str | None = None
    escalation_id: int | None = None
    cancelled: list[int] = field(default_factory=list)
    answer: str | None = None  # what to text back (SMS HELP / STOP confirmations)


def _token(addresses: tuple[str, ...], secret: str, purpose: str) -> int | None:
    from integrations.email_in import reminder_ids

    found = reminder_ids(addresses, secret, purpose) if secret else ()
    return found[0] if found else None


def _by_message_id(session: Session, ids: tuple[str, ...]) -> Reminder | None:
    wanted = [m for raw in ids for m in MESSAGE_ID.findall(raw) or [raw.strip()] if m]
    if not wanted:
        return None
    return session.scalars(
        select(Reminder).where(Reminder.message_id.in_(wanted)).order_by(Reminder.id.desc())
    ).first()


def _stored_email(
    mail: InboundEmail, raw: str, now: datetime, reminder_id: int | None, **fields: object
) -> InboundMessage:
    """The message as received (raw kept), with what is known of whose it is."""
    values: dict[str, object] = {
        "channel": "email",
        "received_at": now,
        "sender": mail.sender[:320],
        "subject": mail.subject,
        "message_id": mail.message_id,
        "raw": raw,
        "text": mail.text,
        "reminder_id": reminder_id,
        **fields,
    }
    return InboundMessage(**values)


def match_email(
    session: Session, mail: InboundEmail, secret: str
) -> tuple[Reminder | None, int | None, str | None]:
    """(reminder, customer id, how it matched)."""
    reminder_id = _token(mail.recipients, secret, "reply")
    if reminder_id is not None and (reminder := session.get(Reminder, reminder_id)) is not None:
        return reminder, reminder.customer_id, "reply_token"
    reminder = _by_message_id(session, mail.in_reply_to + mail.references)
    if reminder is not None:
        return reminder, reminder.customer_id, "in_reply_to"
    if mail.sender:
        customers = set(
            session.scalars(
                select(Contact.customer_id).where(func.lower(Contact.email) == mail.sender.lower())
            )
        )
        if len(customers) == 1:
            return None, customers.pop(), "sender"
    return None, None, None


def handle_email(
    session: Session,
    mail: InboundEmail,
    raw: str,
    now: datetime,
    today: date,
    rules: ReplyRules,
    classifier: Classifier,
) -> InboundResult:
    if mail.message_id:
        seen = session.scalar(
            select(InboundMessage.id).where(InboundMessage.message_id == mail.message_id)
        )
        if seen is not None:  # delivered twice (a retried webhook, a mailbox poll): once only
            return InboundResult(seen, "duplicate")
    if mail.bounce is not None:
        return _bounce(session, mail, raw, now, rules)
    unsubscribe = _token(mail.recipients, rules.secret_key, "unsubscribe")
    if unsubscribe is not None:
        from bot.reminders.delivery import unsubscribe_email

        unsubscribe_email(session, unsubscribe, now)
        reminder = session.get(Reminder, unsubscribe)
        stored = _stored_email(
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
    stored = _stored_email(
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
    contact = _contact(session, customer_id, reminder, email=mail.sender)
    return _human_reply(session, stored, customer_id, contact, now, today, rules, classifier)


def _contact(
    session: Session,
    customer_id: int,
    reminder: Reminder | None,
    email: str | None = None,
    phone: str | None = None,
) -> Contact | None:
    if reminder is not None and reminder.contact_id is not None:
        return session.get(Contact, reminder.contact_id)
    query = select(Contact).where(Contact.customer_id == customer_id)
    if email:
        query = query.where(func.lower(Contact.email) == email.lower())
    if phone:
        query = query.where(Contact.phone == phone)
    return session.scalars(query.order_by(Contact.id)).first()


def _human_reply(
    session: Session,
    stored: InboundMessage,
    customer_id: int,
    contact: Contact | None,
    now: datetime,
    today: date,
    rules: ReplyRules,
    classifier: Classifier,
) -> InboundResult:
    triage = classifier.classify(stored.text, today)
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
        _opt_out(session, contact, stored.channel, customer_id, now, "asked in a reply")
    elif label == "promise_to_pay" and triage.promise_date and not unsure:
        service.promise(session, customer_id, triage.promise_date, rules.grace_days, now)
    customer = session.get(Customer, customer_id)
    assert customer is not None
    reason = LABEL_REASON.get(label, "replied") + (" (unsure: please read)" if unsure else "")
    escalation, _ = service.open_or_add(
        session,
        customer_id,
        f"reply: {reason}",
        now,
        detail=f"{stored.channel} from {stored.sender}",
        reminder_id=stored.reminder_id,
        owner=service.owner_for(customer, rules.routes),
    )
    return InboundResult(stored.id, "reply", customer_id, label, escalation.id, cancelled=cancelled)


def _named(session: Session, customer_id: int, text: str) -> list[str]:
    """The customer's open invoice numbers the text mentions (all of them when it names none)."""
    from bot.core.models import Invoice

    numbers = session.scalars(
        select(Invoice.number).where(Invoice.customer_id == customer_id, Invoice.status == "open")
    ).all()
    return [
        n for n in numbers if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text, re.IGNORECASE)
    ]


def _opt_out(
    session: Session, contact: Contact, channel: str, customer_id: int, now: datetime, how: str
) -> None:
    column = Contact.sms_opted_out_at if channel == "sms" else Contact.email_opted_out_at
    changed = session.execute(
        update(Contact)
        .where(Contact.id == contact.id, column.is_(None))
        .values({column.key: now, "updated_at": now})
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session,
            now,
            "contact.opted_out",
            customer_id=customer_id,
            payload={"channel": channel, "how": how, "contact": contact.id},
        )


def _bounce(
    session: Session, mail: InboundEmail, raw: str, now: datetime, rules: ReplyRules
) -> InboundResult:
    bounce = mail.bounce
    assert bounce is not None
    reminder_id = _token(mail.recipients, rules.secret_key, "bounce")
    reminder = session.get(Reminder, reminder_id) if reminder_id is not None else None
    if reminder is None and bounce.original_message_id:
        reminder = _by_message_id(session, (bounce.original_message_id,))
    stored = _stored_email(
        mail,
        raw,
        now,
        reminder.id if reminder else None,
        text=bounce.diagnostic or mail.text,
        customer_id=reminder.customer_id if reminder else None,
        matched_by="bounce",
        automatic=True,
        label="bounce",
    )
    session.add(stored)
    session.flush()
    if reminder is None:
        audit.record(
            session, now, "reply.unmatched", payload={"inbound": stored.id, "bounce": True}
        )
        stored.awaiting_slack = True
        return InboundResult(stored.id, "unmatched")
    if not bounce.permanent:
        audit.record(
            session,
            now,
            "reply.automatic",
            customer_id=reminder.customer_id,
            reminder_id=reminder.id,
            payload={"inbound": stored.id, "why": f"delivery delayed ({bounce.status})"},
        )
        return InboundResult(stored.id, "automatic", reminder.customer_id)
    error = f"bounced: {bounce.status or ''} {bounce.diagnostic or ''}".strip()[:1000]
    session.execute(
        update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.state.in_(("sent", "unknown", "sending")))
        .values(state="failed", error=error, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if reminder.contact_id is not None:
        session.execute(
            update(Contact)
            .where(Contact.id == reminder.contact_id)
            .values(email_unusable_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            now,
            "contact.bouncing",
            customer_id=reminder.customer_id,
            reminder_id=reminder.id,
            payload={"contact": reminder.contact_id, "status": bounce.status, "error": error},
        )
    audit.record(
        session,
        now,
        "reminder.failed",
        customer_id=reminder.customer_id,
        reminder_id=reminder.id,
        payload={"error": error},
    )
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    escalation, _ = service.open_or_add(
        session,
        reminder.customer_id,
        "send_failed",
        now,
        detail=f"the email to {', '.join(bounce.failed_recipients) or 'the contact'} bounced ({bounce.status})",
        reminder_id=reminder.id,
        owner=service.owner_for(customer, rules.routes),
    )
    return InboundResult(stored.id, "bounce", reminder.customer_id, escalation_id=escalation.id)


def handle_sms(
    session: Session,
    sender: str,
    body: str,
    provider_id: str | None,
    now: datetime,
    today: date,
    rules: ReplyRules,
    classifier: Classifier,
    business_name: str,
) -> InboundResult:
    """A text from a number. STOP and its synonyms opt the number out of SMS (carriers require
    it); START opts back in; HELP answers who we are; anything else is a reply."""
    if provider_id:
        seen = session.scalar(
            select(InboundMessage.id).where(
                InboundMessage.channel == "sms", InboundMessage.message_id == provider_id
            )
        )
        if seen is not None:  # Twilio retried the webhook: once only
            return InboundResult(seen, "duplicate")
    contacts = list(session.scalars(select(Contact).where(Contact.phone == sender)))
    customer_ids = {c.customer_id for c in contacts}
    customer_id = customer_ids.pop() if len(customer_ids) == 1 else None
    word = body.strip().upper().rstrip(".!")
    stored = InboundMessage(
        channel="sms",
        received_at=now,
        sender=sender[:320],
        subject=None,
        message_id=provider_id,
        raw=body,
        text=body.strip(),
        customer_id=customer_id,
        matched_by="sender" if customer_id else None,
        automatic=False,
    )
    session.add(stored)
    session.flush()
    if word in STOP_WORDS:
        for contact in contacts:
            _opt_out(session, contact, "sms", contact.customer_id, now, f"texted {word}")
            cancel_waiting(session, contact.customer_id, "opted_out", now)
        return InboundResult(
            stored.id,
            "opt_out",
            customer_id,
            answer=f"{business_name}: you will get no more texts from us. Reply START to undo.",
        )
    if word in START_WORDS:
        for contact in contacts:
            if contact.sms_opted_out_at is not None:
                contact.sms_opted_out_at, contact.updated_at = None, now
                audit.record(
                    session,
                    now,
                    "contact.opted_in",
                    customer_id=contact.customer_id,
                    payload={"channel": "sms", "how": f"texted {word}", "contact": contact.id},
                )
        return InboundResult(
            stored.id,
            "opt_in",
            customer_id,
            answer=f"{business_name}: texts are on again. Reply STOP to stop them.",
        )
    if word in HELP_WORDS:
        return InboundResult(
            stored.id,
            "help",
            customer_id,
            answer=(
                f"{business_name} accounts team: payment reminders about your invoices. "
                "Reply STOP to stop texts."
            ),
        )
    if customer_id is None:
        audit.record(session, now, "reply.unmatched", payload={"inbound": stored.id, "sms": sender})
        stored.awaiting_slack = True
        return InboundResult(stored.id, "unmatched")
    first = contacts[0] if contacts else None
    return _human_reply(session, stored, customer_id, first, now, today, rules, classifier)


def assign(
    session: Session,
    inbound_id: int,
    query: str,
    user: str,
    now: datetime,
    today: date,
    rules: ReplyRules,
    classifier: Classifier,
) -> InboundResult:
    """A person says whose message it is: from then on it is that customer's reply."""
    from bot.ledger.customers import find_customer

    stored = session.get(InboundMessage, inbound_id)
    if stored is None:
        raise UserError(f"there is no inbound message {inbound_id}")
    if stored.customer_id is not None:
        raise UserError(f"message {inbound_id} already belongs to a customer")
    customer = find_customer(session, query)
    stored.customer_id, stored.matched_by = customer.id, f"assigned by {user}"[:32]
    stored.awaiting_slack = False
    audit.record(
        session,
        now,
        "reply.assigned",
        actor=user,
        customer_id=customer.id,
        payload={"inbound": inbound_id},
    )
    contact = _contact(session, customer.id, None)
    return _human_reply(session, stored, customer.id, contact, now, today, rules, classifier)


def missed_promises(
    session: Session, today: date, grace_days: int, now: datetime
) -> list[tuple[int, list[str]]]:
    """Promises whose date plus grace has passed with the invoice still open: the promise is
    cleared and the pause lifted, so the next plan resumes the sequence. Returns
    (customer id, invoice numbers) for the owner to be told."""
    from datetime import timedelta

    from bot.core.models import Invoice

    due = session.scalars(
        select(Invoice).where(
            Invoice.status == "open",
            Invoice.promise_date.is_not(None),
            Invoice.promise_date < today - timedelta(days=grace_days),
        )
    ).all()
    by_customer: dict[int, list[Invoice]] = {}
    for invoice in due:
        by_customer.setdefault(invoice.customer_id, []).append(invoice)
    out = []
    for customer_id, invoices in by_customer.items():
        customer = session.get(Customer, customer_id)
        assert customer is not None
        promised = max(i.promise_date for i in invoices if i.promise_date)
        for invoice in invoices:
            invoice.promise_date, invoice.updated_at = None, now
        if customer.paused_until is not None and customer.paused_until <= now + timedelta(days=1):
            customer.paused_until, customer.updated_at = None, now
        numbers = sorted(i.number for i in invoices)
        audit.record(
            session,
            now,
            "promise.missed",
            customer_id=customer_id,
            payload={"promised": promised.isoformat(), "invoices": numbers},
        )
        out.append((customer_id, numbers))
    return out
