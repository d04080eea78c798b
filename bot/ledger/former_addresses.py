"""Where a reminder went, when its contact has since moved. A ledger import moves a contact to a
new email address or phone number in place (bot/ledger/contact_addresses.py, bot/ledger/contacts.py),
so a reminder names its contact, not the address it went to. An opt-out, a complaint, a bounce or a
failure report that arrives after the move for a message sent before it is about the old address:
it must not mark the contact (now at the new one). It is recorded against the old address instead,
in an Event that `remembered_marks` reads, so the mark comes back with the address if the ledger
gives it again (RULES A7, C6: an opt-out and a bounce are an address's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Event, Reminder
from bot.core.vocabulary import Channel
from bot.ledger.contact_addresses import ADDRESS_CHANGED, OPTED_OUT, remembered_marks
from bot.ledger.contacts import NUMBER_CHANGED


def former_address(session: Session, reminder: Reminder) -> str | None:
    """The address (or number) `reminder` went to when its contact has moved away from it since:
    the old address of the first move of its contact recorded after the reminder was sent, unless
    the contact is back at it. None when it went to its contact's current address."""
    if reminder.contact_id is None or reminder.channel not in (Channel.EMAIL, Channel.SMS):
        return None
    sent = reminder.sent_at or reminder.updated_at
    email = reminder.channel == Channel.EMAIL
    moves = session.scalars(
        select(Event.payload)
        .where(
            Event.customer_id == reminder.customer_id,
            Event.kind == (ADDRESS_CHANGED if email else NUMBER_CHANGED),
            Event.at > sent,
        )
        .order_by(Event.id)
    ).all()
    old = next(
        (
            str(p["from"])
            for p in moves
            if p.get("contact") == reminder.contact_id and p.get("from")
        ),
        None,
    )
    if old is None:
        return None
    contact = session.get(Contact, reminder.contact_id)
    current = (contact.email if email else contact.phone) if contact is not None else None
    return None if same_address(old, current) else old


def same_address(address: str, other: str | None) -> bool:
    """Whether `other` is `address` (an email address's case is no difference)."""
    return other is not None and address.casefold() == other.casefold()


def mark_former_address(
    session: Session,
    reminder: Reminder,
    address: str,
    mark: str,
    now: datetime,
    **details: Any,
) -> bool:
    """Record `mark` (OPTED_OUT or UNUSABLE) against `address`, the one `reminder` went to before
    its contact moved, leaving the contact alone; returns whether it was recorded. An email
    opt-out already on the address (kept by its move, or recorded since) is not recorded again."""
    assert reminder.contact_id is not None
    channel = reminder.channel or Channel.EMAIL
    key = (reminder.customer_id, address.lower())
    opted_out = mark == OPTED_OUT and channel == Channel.EMAIL
    if opted_out and remembered_marks(session, [key]).get(key, {}).get(OPTED_OUT):
        return False
    payload: dict[str, Any] = {
        "channel": channel,
        "contact": reminder.contact_id,
        "address": address,  # not the contact's: it has moved from it since
        **details,
    }
    audit.record(
        session,
        now,
        "contact.opted_out" if mark == OPTED_OUT else "contact.bouncing",
        customer_id=reminder.customer_id,
        reminder_id=reminder.id,
        payload=payload,
    )
    return True
