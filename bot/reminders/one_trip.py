"""On PostgreSQL, the send loop's commonest step in one statement: the previous message's `sent`
with its `reminder.sent` Event, and this reminder's `sending`, in one round trip on a connection
of its own in autocommit (a single statement is its own transaction, so both are committed
together, before this reminder's provider is called, as in the general step). The general step
takes six round trips (the pool's ping, BEGIN, three statements, COMMIT); on a loaded machine each
is a wait for another process, and they were most of a send's time. Every other step (a result
other than `sent`, a reminder that must wait for its sending hours, copies of invoices to attach)
goes through the general step in bot/reminders/sending.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, literal, null, select, update

from bot.core import audit
from bot.core.models import Event, Reminder
from bot.reminders.outbox import Claimed, sending_values
from bot.reminders.results import Handed
from bot.reminders.state import APPROVED, SENDING, SENT, check
from integrations.base.outbound import Outgoing


def _statement() -> Select[Any]:
    check((SENDING,), SENT)
    check((APPROVED,), SENDING)
    reminders: Any = Reminder.__table__
    events: Any = Event.__table__
    sent = (
        update(reminders)
        .where(reminders.c.id == bindparam("sent_id"), reminders.c.state == SENDING.value)
        .values(
            state=SENT.value,
            updated_at=bindparam("answered_at"),
            sent_at=bindparam("answered_at"),
            provider_message_id=bindparam("provider_id"),
            error=None,
        )
        .returning(reminders.c.id, reminders.c.customer_id)
        .cte("sent")
    )
    event = insert(events).from_select(
        ["at", "actor", "kind", "customer_id", "invoice_id", "reminder_id", "payload"],
        select(
            bindparam("answered_at", type_=events.c.at.type),
            literal(audit.SYSTEM),
            literal("reminder.sent"),
            sent.c.customer_id,
            null(),
            sent.c.id,
            bindparam("event", type_=events.c.payload.type),
        ).select_from(sent),
    )
    sending = (
        update(reminders)
        .where(reminders.c.id == bindparam("reminder_id"), reminders.c.state == APPROVED.value)
        .values(
            state=SENDING.value,
            updated_at=bindparam("moved_at"),
            attempts=reminders.c.attempts + 1,
            message_id=bindparam("new_message_id"),
            reply_token=bindparam("new_reply_token"),
        )
        .returning(reminders.c.id)
        .cte("sending")
    )
    return select(
        select(func.count()).select_from(sent).scalar_subquery(),
        select(func.count()).select_from(sending).scalar_subquery(),
    ).add_cte(event.cte("event"))


SENT_THEN_SENDING = _statement()


def sent_then_sending(
    connection: Connection, handed: Handed | None, claimed: Claimed, now: datetime
) -> tuple[bool, Outgoing | None]:
    """Store `handed` (the previous message, which its provider accepted) as `sent` and move
    `claimed` to `sending`, committed together. Returns whether `handed` was still `sending` (its
    result stored), and `claimed`'s message dated `now` when it moved (None when it was no longer
    `approved`: cancelled since the claim)."""
    outgoing, values = sending_values(claimed, now)
    values |= {"sent_id": None, "answered_at": now, "provider_id": None, "event": None}
    if handed is not None:
        values |= {
            "sent_id": handed.claimed.reminder_id,
            "answered_at": handed.at,
            "provider_id": handed.delivery.provider_id,
            "event": {"channel": handed.outgoing.channel, "message_id": handed.outgoing.message_id},
        }
    stored, moved = connection.execute(SENT_THEN_SENDING, values).one()
    connection.commit()  # nothing at the driver (autocommit): ends SQLAlchemy's own transaction
    return stored == 1, outgoing if moved == 1 else None
