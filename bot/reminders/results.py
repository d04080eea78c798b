"""What became of a message handed to its provider, stored: `sent`; back to `approved` to retry
later (a transient error) or untouched (an outage of our account, which stops its channel);
`unknown` (no answer after it was handed over), with an escalation for a person to check it
(bot/reminders/in_doubt.py); or `failed`, with the address marked unusable when that is what the
provider said, and an escalation for a person. One sent though a stop was asked for after its
claim (a payment, reply, pause or dispute while the provider already had it) is `sent`, and its
customer's escalation says it went out after the stop, for a person to decide whether to
apologise."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.labels import reason_label
from bot.core.models import Contact, Reminder
from bot.core.vocabulary import ReminderState
from bot.escalations.service import open_or_add
from bot.reminders import in_doubt, state
from bot.reminders.outbox import Claimed, FlushReport
from bot.reminders.state import APPROVED, FAILED, SENDING, SENT, UNKNOWN, AuditEvent
from integrations.base.outbound import (
    REFUSES_OUR_MAIL,
    STILL_REFUSES_OUR_MAIL,
    Delivery,
    Outgoing,
)

log = logging.getLogger(__name__)
SENT_AFTER_STOP = "sent_after_stop"  # the escalation's reason (a free text column: no migration)
MAX_ATTEMPTS = 5
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
# The move most sends end with, built once (see outbox.TO_SENDING).
TO_SENT = state.prepared_move(
    SENDING,
    SENT,
    sent_at=bindparam("answered_at"),
    provider_message_id=bindparam("provider_id"),
    error=None,
    cancel_reason=None,  # a stop asked for while it was already handed over: read before
)


@dataclass(frozen=True, slots=True)
class Handed:
    """A message handed to its provider, and what the provider said."""

    claimed: Claimed
    outgoing: Outgoing
    delivery: Delivery
    at: datetime  # when the answer came back


def record(session: Session, handed: Handed, report: FlushReport) -> None:
    """Store what the provider said. Each change is conditional on the reminder still being
    `sending`; if it is not (another worker marked it unknown meanwhile), nothing else is
    written: no event, no escalation, no contact change."""
    claimed, outgoing, delivery, now = handed.claimed, handed.outgoing, handed.delivery, handed.at
    reminder_id = claimed.reminder_id

    def move(to: ReminderState, events: list[AuditEvent], **values: Any) -> bool:
        if state.transition(
            session,
            [reminder_id],
            from_states=(SENDING,),
            to=to,
            now=now,
            events=events,
            cancel_reason=None,
            **values,
        ):
            return True
        log.warning("reminder %s was no longer sending when its result came back", reminder_id)
        return False

    def back(events: list[AuditEvent], **values: Any) -> bool:
        """Back to `approved`, unless a stop was asked for since the claim: then cancelled."""
        moved, stopped = state.back_to_approved(
            session, [reminder_id], now=now, events=events, **values
        )
        report.cancelled.update(stopped)
        if not moved and not stopped:
            log.warning("reminder %s was no longer sending when its result came back", reminder_id)
        return bool(moved)

    status = delivery.status
    if status == "transient" and claimed.attempts >= MAX_ATTEMPTS:
        status = "permanent"
    if status == "sent":
        record_sent(session, [handed], report)
    elif status == "transient":
        wait = BACKOFF[min(claimed.attempts - 1, len(BACKOFF) - 1)]
        retrying = ("reminder.retrying", {"error": delivery.error, "in": str(wait)})
        if back([retrying], send_after=now + wait, error=delivery.error):
            report.retrying.append(reminder_id)
    elif status == "outage":
        # Our account or configuration, not this customer: put it back untouched (no Event). Its
        # `error` keeps the outage; the same one met again on its next try was told already.
        before = session.scalar(select(Reminder.error).where(Reminder.id == reminder_id))
        if back([], attempts=claimed.attempts - 1, error=delivery.error) and (
            before == delivery.error
        ):
            report.outage_told.append(reminder_id)
        report.outage = delivery.error
    elif status == "unknown":
        if move(UNKNOWN, [("reminder.unknown", {"error": delivery.error})], error=delivery.error):
            in_doubt.escalate(  # a person is told even if the run fails before Slack hears
                session,
                now,
                customer_id=claimed.customer_id,
                reminder_id=reminder_id,
                channel=outgoing.channel,
                why=delivery.error or "no answer from the provider after it took the message",
            )
            report.unknown.append(reminder_id)
    elif move(FAILED, [("reminder.failed", {"error": delivery.error})], error=delivery.error):
        if (delivery.address_unusable or delivery.opted_out) and claimed.contact_id:
            kind = "opted_out" if delivery.opted_out else "unusable"
            column = f"{outgoing.channel}_{kind}_at"  # email_unusable_at, sms_opted_out_at, ...
            session.execute(
                update(Contact).where(Contact.id == claimed.contact_id).values({column: now})
            )
        open_or_add(
            session,
            claimed.customer_id,
            "send_failed",
            now,
            detail=delivery.error,
            reminder_id=reminder_id,
        )
        report.failed.append(reminder_id)


@dataclass(frozen=True, slots=True)
class RefusedBefore:
    """Email last stopped because its relay refuses our mail by policy, and no message was
    accepted since: the reminders it stopped at, and whether it stopped so again (STILL_…)."""

    stopped_at: frozenset[int]
    again: bool


def refuses_our_mail(session: Session, channel: str) -> RefusedBefore | None:
    """Whether `channel` last stopped because its relay refuses our mail by policy, and no
    message of it was accepted since. An outage is kept nowhere but in the `error` of the
    reminders it stopped at (they wait approved, untouched), so that is where it is read: such
    reminders put back after the last message the channel's provider took."""
    accepted = session.scalar(
        select(func.max(Reminder.sent_at)).where(
            Reminder.channel == channel, Reminder.sent_at.is_not(None)
        )
    )
    query = select(Reminder.id, Reminder.error).where(
        Reminder.state == APPROVED.value,
        Reminder.channel == channel,
        or_(
            Reminder.error.startswith(REFUSES_OUR_MAIL, autoescape=True),
            Reminder.error.startswith(STILL_REFUSES_OUR_MAIL, autoescape=True),
        ),
    )
    if accepted is not None:
        query = query.where(Reminder.updated_at > accepted)
    stopped = session.execute(query).all()
    if not stopped:
        return None
    return RefusedBefore(
        stopped_at=frozenset(reminder_id for reminder_id, _ in stopped),
        again=any((error or "").startswith(STILL_REFUSES_OUR_MAIL) for _, error in stopped),
    )


def record_sent(session: Session, handed: Sequence[Handed], report: FlushReport) -> None:
    """The messages their providers accepted: each `sending` → `sent` with its `reminder.sent`
    Event, in two statements for them all (built once). Like every result, a move happens only
    if the reminder is still `sending`, and only those moved get their Event. One whose stop was
    asked for after its claim (its `cancel_reason`, read first: the move clears it) went out all
    the same: its `reminder.sent_after_stop` Event keeps the stop, and its customer's escalation
    is opened or added to (`tell_sent_after_stop`)."""
    if not handed:
        return
    connection = session.connection()
    table: Any = Reminder.__table__
    # The settle has locked these rows (state.lock), so no stop comes between this read and the
    # move; SQLite's writing transactions run one at a time.
    stops: dict[int, str] = dict(
        connection.execute(
            select(table.c.id, table.c.cancel_reason).where(
                table.c.id.in_([one.claimed.reminder_id for one in handed]),
                table.c.state == SENDING.value,
                table.c.cancel_reason.is_not(None),
            )
        ).all()
    )
    values = [
        {
            "reminder_id": one.claimed.reminder_id,
            "moved_at": one.at,
            "answered_at": one.at,
            "provider_id": one.delivery.provider_id,
        }
        for one in handed
    ]
    stored = list(handed)
    if connection.execute(TO_SENT, values).rowcount != len(handed):
        # Some were no longer `sending`: those moved now are `sent` with this attempt's Message-ID.
        moved = set(
            connection.scalars(
                select(table.c.id).where(
                    table.c.id.in_([one.claimed.reminder_id for one in handed]),
                    table.c.state == SENT.value,
                    table.c.message_id.in_([one.outgoing.message_id for one in handed]),
                )
            )
        )
        stored = [one for one in handed if one.claimed.reminder_id in moved]
        for one in handed:
            if one.claimed.reminder_id not in moved:
                log.warning(
                    "reminder %s was no longer sending when it was sent", one.claimed.reminder_id
                )
    audit.record_many(
        session,
        [
            {
                "at": one.at,
                "actor": audit.SYSTEM,
                "kind": "reminder.sent",
                "customer_id": one.claimed.customer_id,
                "invoice_id": None,
                "reminder_id": one.claimed.reminder_id,
                "payload": {"channel": one.outgoing.channel, "message_id": one.outgoing.message_id},
            }
            for one in stored
        ],
    )
    report.sent += [one.claimed.reminder_id for one in stored]
    for one in stored:
        stop = stops.get(one.claimed.reminder_id)
        if stop is not None:
            tell_sent_after_stop(session, one, stop)
            report.sent_after_stop[one.claimed.reminder_id] = stop


def tell_sent_after_stop(session: Session, handed: Handed, stop: str) -> None:
    """A reminder the provider had already taken when a stop was asked for (`stop`: paid,
    replied, disputed, ...) went out: it cannot be unsent, so a person is told, in the caller's
    transaction: an Event on the reminder, and its customer's escalation opened or added to."""
    reminder_id, customer_id = handed.claimed.reminder_id, handed.claimed.customer_id
    audit.record(
        session,
        handed.at,
        "reminder.sent_after_stop",
        customer_id=customer_id,
        reminder_id=reminder_id,
        payload={"stop": stop, "channel": handed.outgoing.channel},
    )
    open_or_add(
        session,
        customer_id,
        SENT_AFTER_STOP,
        handed.at,
        detail=sent_after_stop_detail(reminder_id, stop),
        reminder_id=reminder_id,
    )


def sent_after_stop_detail(reminder_id: int, stop: str) -> str:
    """What the escalation says after its reason ("a reminder went out after a stop was
    asked"): the reminder, the stop, and what to do."""
    return (
        f"reminder {reminder_id} went out after a stop was asked ({reason_label(stop)}): the "
        "provider already had it when the stop came, so it was not stopped. Check whether to "
        "apologise or put it right with Reply."
    )
