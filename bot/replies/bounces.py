"""Opt-outs and bounces: a contact who asked to stop is recorded once per channel; a delivery
failure marks the address as bouncing, fails the reminder and escalates, while a delay only
logs. A refusal for our own side (the sending domain's SPF/DKIM/DMARC, a banned attachment) fails
the reminder and tells a person what to fix, leaving the address alone; a spam complaint opts the
address out of email and tells a person."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Customer, Reminder
from bot.escalations import service
from bot.ledger.contact_addresses import OPTED_OUT, UNUSABLE
from bot.ledger.former_addresses import former_address, mark_former_address, same_address
from bot.reminders import state
from bot.reminders.state import FAILED, SENDING, SENT, UNKNOWN
from bot.replies.match import (
    InboundResult,
    ReplyRules,
    reminder_by_message_id,
    reminder_by_token,
    stored_email,
)

if TYPE_CHECKING:
    from integrations.base.inbound import Bounce, InboundEmail


def opt_out(
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


def handle_bounce(
    session: Session, mail: InboundEmail, raw: bytes | str, now: datetime, rules: ReplyRules
) -> InboundResult:
    bounce = mail.bounce
    assert bounce is not None
    reminder_id = reminder_by_token(mail.recipients, rules.secret_key, "bounce")
    reminder = session.get(Reminder, reminder_id) if reminder_id is not None else None
    if reminder is None and bounce.original_message_id:
        reminder = reminder_by_message_id(session, (bounce.original_message_id,))
    stored = stored_email(
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
    if bounce.complaint:
        return _complaint(session, bounce, stored.id, reminder, now, rules)
    if bounce.sender_side:
        return _refused_for_us(session, bounce, stored.id, reminder, now, rules)
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
    # Read before the reminder's state changes: the address it went to, if its contact has moved.
    old_address = _about_former_address(session, reminder, bounce.failed_recipients)
    # A message handed over (sent, unknown, or still sending) has failed after all; a repeated
    # bounce changes nothing more on the reminder. The reminder before its contact, as the send
    # worker's results take their locks on PostgreSQL (a message, then its contact).
    state.transition(
        session,
        [reminder.id],
        from_states=(SENT, UNKNOWN, SENDING),
        to=FAILED,
        now=now,
        events=[("reminder.failed", {"error": error})],
        refresh_loaded=False,
        error=error,
        cancel_reason=None,  # a stop asked for after its claim no longer describes it
    )
    if old_address is not None:
        mark_former_address(
            session, reminder, old_address, UNUSABLE, now, status=bounce.status, error=error
        )
    elif reminder.contact_id is not None:
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
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    escalation, _ = service.open_or_add(
        session,
        reminder.customer_id,
        "send_failed",
        now,
        detail=f"the email to {', '.join(bounce.failed_recipients) or old_address or 'the contact'} bounced ({bounce.status})",
        reminder_id=reminder.id,
        owner=service.owner_for(customer, rules.routes),
    )
    return InboundResult(stored.id, "bounce", reminder.customer_id, escalation_id=escalation.id)


def _complaint(
    session: Session,
    bounce: Bounce,
    inbound_id: int,
    reminder: Reminder,
    now: datetime,
    rules: ReplyRules,
) -> InboundResult:
    """The recipient marked our reminder as spam: no more email to that address (the one it went
    to, when its contact has moved to another since)."""
    contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
    old_address = _about_former_address(session, reminder, bounce.recipients)
    if old_address is not None:
        mark_former_address(session, reminder, old_address, OPTED_OUT, now, how="spam complaint")
    elif contact is not None:
        opt_out(session, contact, "email", reminder.customer_id, now, "spam complaint")
    who = (
        ", ".join(bounce.recipients)
        or old_address
        or (contact.email if contact else None)
        or "the contact"
    )
    escalation = _tell(
        session,
        reminder,
        now,
        rules,
        "spam complaint",
        f"{who} marked our reminder as spam; email to that address is now opted out. "
        "Reach the customer another way, or ask them before emailing again.",
    )
    return InboundResult(inbound_id, "bounce", reminder.customer_id, escalation_id=escalation)


def _refused_for_us(
    session: Session,
    bounce: Bounce,
    inbound_id: int,
    reminder: Reminder,
    now: datetime,
    rules: ReplyRules,
) -> InboundResult:
    """Refused for what we sent or where from, not for the address: the address stays usable."""
    error = f"refused: {bounce.status or ''} {bounce.diagnostic or ''}".strip()[:1000]
    if bounce.action == "failed":
        state.transition(
            session,
            [reminder.id],
            from_states=(SENT, UNKNOWN, SENDING),
            to=FAILED,
            now=now,
            events=[("reminder.failed", {"error": error, "sender_side": True})],
            refresh_loaded=False,
            error=error,
            cancel_reason=None,
        )
    why = (bounce.diagnostic or "").strip()[:300]
    escalation = _tell(
        session,
        reminder,
        now,
        rules,
        "our email was refused",
        f"the receiving server refused our email ({bounce.status or 'no status code'}) for our "
        "side, not for the customer's address: check the sending domain's SPF, DKIM and DMARC "
        "records (and that the reminder carries no attachment the receiver bans), then resend."
        + (f" The server said: {why}" if why else ""),
    )
    return InboundResult(inbound_id, "bounce", reminder.customer_id, escalation_id=escalation)


def _tell(
    session: Session, reminder: Reminder, now: datetime, rules: ReplyRules, reason: str, detail: str
) -> int:
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    escalation, _ = service.open_or_add(
        session,
        reminder.customer_id,
        reason,
        now,
        detail=detail,
        reminder_id=reminder.id,
        owner=service.owner_for(customer, rules.routes),
    )
    return escalation.id


def _about_former_address(
    session: Session, reminder: Reminder, recipients: tuple[str, ...]
) -> str | None:
    """The address a report on `reminder` is about when that is not its contact's: the one the
    reminder went to before its contact moved, unless the report names the contact's current
    address as its recipient."""
    old_address = former_address(session, reminder)
    if old_address is None or reminder.contact_id is None:
        return None
    contact = session.get(Contact, reminder.contact_id)
    current = contact.email if contact is not None else None
    if any(same_address(recipient, current) for recipient in recipients):
        return None  # the report is about the contact's address as it is now
    return old_address
