"""What happens after sending: provider delivery reports, and one-click unsubscribes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Reminder
from bot.escalations.service import open_or_add
from bot.ledger.contact_addresses import OPTED_OUT, UNUSABLE
from bot.ledger.former_addresses import former_address, mark_former_address
from bot.reminders import state
from bot.reminders.state import FAILED, SENDING, SENT, UNKNOWN

FAILED_STATUSES = ("undelivered", "failed")
# Twilio delivery error codes that are about the number itself.
UNREACHABLE_NUMBER = {"30005", "30006"}  # unknown number, landline (30003 is often temporary)
UNSUBSCRIBED = "21610"  # the recipient replied STOP to our number (RULES B4)


def sms_status(
    session: Session,
    provider_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
    reminder_id: int | None = None,
) -> int | None:
    """Apply a Twilio status callback; returns the reminder id it concerned (None if unknown).
    `reminder_id` comes from the signed token in the callback URL, for a report that arrives
    before the provider's id is stored."""
    reminder = session.scalars(
        select(Reminder).where(Reminder.provider_message_id == provider_id)
    ).first()
    if reminder is None and reminder_id is not None:
        reminder = session.get(Reminder, reminder_id)
    if reminder is None:
        return None
    payload = {"status": status, "error_code": error_code}
    if status == "delivered":
        audit.record(
            session,
            now,
            "reminder.delivered",
            customer_id=reminder.customer_id,
            reminder_id=reminder.id,
            payload=payload,
        )
        return reminder.id
    if status not in FAILED_STATUSES:
        return reminder.id  # queued, sent, ...: nothing to do
    # A text sent before the ledger gave its contact another number went to the old one: a
    # report on it says nothing of the new number (read before the text's state changes).
    old_number = former_address(session, reminder)
    # A text handed over has failed after all: one `sent`, `unknown` (no answer from Twilio), or
    # still `sending` (its lane commits results a few at a time, and a report can come first; the
    # lane's own result then finds it no longer `sending` and leaves it). A stop asked for after
    # its claim is dropped, as when the lane stores the failure itself. A repeated callback
    # changes nothing.
    failed = state.transition(
        session,
        [reminder.id],
        from_states=(SENT, UNKNOWN, SENDING),
        to=FAILED,
        now=now,
        events=[("reminder.failed", payload)],
        error=f"Twilio {status} {error_code or ''}".strip(),
        cancel_reason=None,
    )
    # The text first, then its contact, as the send worker's results and a ledger import
    # (bot/ledger/contacts.py) take their locks on PostgreSQL: in the other order, a report
    # holding the contact while it waited for the text would deadlock with them.
    if error_code == UNSUBSCRIBED and reminder.contact_id:
        _sms_opted_out(session, reminder, now)
    if failed:
        if error_code in UNREACHABLE_NUMBER and reminder.contact_id:
            if old_number is not None:
                mark_former_address(
                    session, reminder, old_number, UNUSABLE, now, status=status, error=error_code
                )
            else:
                session.execute(
                    update(Contact)
                    .where(Contact.id == reminder.contact_id)
                    .values(sms_unusable_at=now)
                )
        open_or_add(
            session,
            reminder.customer_id,
            "send_failed",
            now,
            detail=f"text {status} ({error_code})",
            reminder_id=reminder.id,
        )
    return reminder.id


def _sms_opted_out(session: Session, reminder: Reminder, now: datetime) -> None:
    """The number replied STOP (Twilio says so by 21610): no more texts to it, as when a send
    is refused with the same code. A repeated report changes nothing."""
    changed = session.execute(
        update(Contact)
        .where(Contact.id == reminder.contact_id, Contact.sms_opted_out_at.is_(None))
        .values(sms_opted_out_at=now, updated_at=now)
    )
    if changed.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session,
            now,
            "contact.opted_out",
            customer_id=reminder.customer_id,
            reminder_id=reminder.id,
            payload={"channel": "sms", "how": "Twilio 21610", "contact": reminder.contact_id},
        )


def unsubscribe_email(session: Session, reminder_id: int, now: datetime) -> bool:
    """One-click unsubscribe: stop email to the address this reminder went to (only that one).
    When its contact has moved to another address since, that is the old address, not the
    contact's: the opt-out is recorded against it and comes back with it."""
    reminder = session.get(Reminder, reminder_id)
    if reminder is None or reminder.contact_id is None:
        return False
    old_address = former_address(session, reminder)
    if old_address is not None:
        mark_former_address(session, reminder, old_address, OPTED_OUT, now, how="one-click")
        return True
    result = session.execute(
        update(Contact)
        .where(Contact.id == reminder.contact_id, Contact.email_opted_out_at.is_(None))
        .values(email_opted_out_at=now, updated_at=now)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session,
            now,
            "contact.opted_out",
            customer_id=reminder.customer_id,
            reminder_id=reminder.id,
            payload={"channel": "email", "how": "one-click"},
        )
    return True
