"""Account controls a person sets from Slack: pause, resume, never automate, automate again.

Pausing (or never automating) also cancels the customer's reminders still waiting, so nothing
already planned or approved goes out meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Customer, Invoice, Reminder
from bot.core.vocabulary import WAITING, Channel, InvoiceStatus, ReminderAction
from bot.escalations.promises import promise_pauses
from bot.ledger.customers import find_customer
from bot.reminders import state

_DURATION = re.compile(r"^(\d{1,3})([dw])$")


def parse_duration(text: str) -> timedelta:
    """`14d` or `2w`."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise UserError(f"{text!r} is not a duration; write e.g. 14d or 2w")
    amount, unit = int(match.group(1)), match.group(2)
    days = amount * (7 if unit == "w" else 1)
    if not 1 <= days <= 365:
        raise UserError("pause for 1 to 365 days")
    return timedelta(days=days)


def cancel_waiting(session: Session, customer_id: int, reason: str, now: datetime) -> list[int]:
    """Cancel the customer's reminders still waiting (planned or approved, not yet sending)."""
    return state.cancel(
        session, None, from_states=WAITING, reason=reason, now=now, where=[waiting_of(customer_id)]
    )


def waiting_of(customer_id: int) -> ColumnElement[bool]:
    """The condition that chooses the reminders `cancel_waiting` cancels for this customer: for a
    writer that cancels several customers' to lock them all first (state.lock_cancellable)."""
    return and_(Reminder.customer_id == customer_id, Reminder.action == ReminderAction.REMIND)


def cancel_waiting_texts(
    session: Session, contact_ids: Collection[int], reason: str, now: datetime
) -> list[int]:
    """Cancel the texts still waiting (planned or approved) to these contacts, as cancel_waiting
    does a customer's reminders: those the send worker has claimed are asked to stop."""
    return cancel_waiting_to(session, contact_ids, Channel.SMS, reason, now)


def cancel_waiting_to(
    session: Session, contact_ids: Collection[int], channel: str, reason: str, now: datetime
) -> list[int]:
    """Cancel the reminders still waiting to these contacts on this channel (texts, or emails),
    as cancel_waiting_texts does."""
    if not contact_ids:
        return []
    return state.cancel(
        session,
        None,
        from_states=WAITING,
        reason=reason,
        now=now,
        where=[_messages_to(contact_ids, channel)],
    )


def waiting_messages_to(
    texts_to: Collection[int], emails_to: Collection[int] = ()
) -> list[ColumnElement[bool]]:
    """The conditions that choose the reminders `cancel_waiting_to` cancels for these contacts,
    the texts to the first and the emails to the second (one each, none for no contacts): for a
    ledger import to lock them with the others it cancels, before it changes any contact
    (bot/ledger/upsert.py)."""
    return [
        _messages_to(contact_ids, channel)
        for contact_ids, channel in ((texts_to, Channel.SMS), (emails_to, Channel.EMAIL))
        if contact_ids
    ]


def _messages_to(contact_ids: Collection[int], channel: str) -> ColumnElement[bool]:
    return and_(
        Reminder.contact_id.in_(list(contact_ids)),
        Reminder.channel == channel,
        Reminder.action == ReminderAction.REMIND,
    )


@dataclass(frozen=True)
class Paused:
    """A pause asked for: the customer (its `paused_until` the pause's end), the waiting
    reminders it cancelled, and, when a pause already running ends later than the one asked for
    and so stays, what set that one (`kept_for`: "a promise to pay by 2026-03-18", "an earlier
    pause")."""

    customer: Customer
    cancelled: list[int]
    kept_for: str | None = None


def pause(
    session: Session, query: str, duration: str, reason: str, user: str, now: datetime
) -> Paused:
    """Pause the customer's reminders for `duration`. A pause already running that ends later (a
    promise's, or a longer one) is never shortened: it stays, and `kept_for` says what set it;
    to pause for less, a person resumes first."""
    customer = find_customer(session, query)
    asked = now + parse_duration(duration)
    running = customer.paused_until
    kept_for = None
    if running is not None and running > asked:
        kept_for = "an earlier pause"
        if running in promise_pauses(session, customer.id):
            promised = session.scalar(
                select(func.max(Invoice.promise_date)).where(
                    Invoice.customer_id == customer.id, Invoice.status == InvoiceStatus.OPEN
                )
            )
            kept_for = f"a promise to pay by {promised.isoformat()}" if promised else kept_for
    until = running if kept_for and running else asked
    customer.paused_until = until
    customer.updated_at = now
    payload = {"until": until.isoformat(), "reason": reason}
    if kept_for:
        payload["asked_until"] = asked.isoformat()
    audit.record(
        session, now, "customer.paused", actor=user, customer_id=customer.id, payload=payload
    )
    return Paused(customer, cancel_waiting(session, customer.id, "paused", now), kept_for)


def resume(session: Session, query: str, user: str, now: datetime) -> Customer:
    customer = find_customer(session, query)
    customer.paused_until = None
    customer.updated_at = now
    audit.record(session, now, "customer.resumed", actor=user, customer_id=customer.id)
    return customer


def set_never_automate(
    session: Session, query: str, never: bool, user: str, now: datetime
) -> tuple[Customer, list[int]]:
    customer = find_customer(session, query)
    customer.never_automate = never
    customer.updated_at = now
    audit.record(
        session,
        now,
        "customer.never_automate" if never else "customer.automate",
        actor=user,
        customer_id=customer.id,
    )
    cancelled = cancel_waiting(session, customer.id, "paused", now) if never else []
    return customer, cancelled
