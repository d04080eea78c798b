"""A claimed reminder's turn: the check right before its send, and what becomes of one that is not
handed over.

It went to `sending` with the few sent with it, in one commit before any of them was handed over
(bot/reminders/sending.py). At its turn it is checked again, in one read and with nothing written:
its contact's sending hours must be open, it must still be `sending` (not taken for dead by another
worker), no stop may have been asked for since (a payment, reply, pause, dispute or opt-out that
cancels the customer's waiting reminders asks those already `sending` to stop:
bot/reminders/state.py), and its address or number must not have been opted out or found unusable
since (an unsubscribe, a STOP, a bounce: `opted_out`, as the claim says). One that is not handed over is stored with the results: cancelled with
the reason asked for, or back to `approved` as it was (its attempt not counted), at its window's
next opening when that is what held it. A move back to `approved` (the window closed, the batch
late, the lane stopped) happens only if no stop was asked for meanwhile; one that was asked for is
cancelled with its reason instead (state.back_to_approved).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Reminder
from bot.planning.send_window import Window
from bot.reminders import state
from bot.reminders.outbox import NO_WINDOW, Claimed, FlushReport, window_opens
from bot.reminders.results import Handed, record, record_sent
from bot.reminders.state import CANCELLED, SENDING

log = logging.getLogger(__name__)
_table: Any = Reminder.__table__
_contacts: Any = Contact.__table__
READ = (
    select(
        _table.c.state,
        _table.c.cancel_reason,
        _contacts.c.email_opted_out_at,
        _contacts.c.email_unusable_at,
        _contacts.c.sms_opted_out_at,
        _contacts.c.sms_unusable_at,
    )
    .select_from(_table.outerjoin(_contacts, _contacts.c.id == _table.c.contact_id))
    .where(_table.c.id == bindparam("reminder_id"))
)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a claimed reminder is not handed over at its turn."""

    stop: str | None = None  # the cancel asked for since its claim
    until: datetime | None = None  # its contact's sending hours open then
    gone: bool = False  # no longer `sending` (another worker took it for dead): nothing is written


def check(connection: Connection, claimed: Claimed, now: datetime, window: Window) -> Hold | None:
    """None when the claimed reminder is to be handed over now; else why not. The read sees what
    was committed up to now, and leaves no transaction open on `connection`."""
    row = connection.execute(READ, {"reminder_id": claimed.reminder_id}).one_or_none()
    connection.commit()  # in autocommit (PostgreSQL) nothing reaches the server
    if row is None or row.state != SENDING.value:
        log.warning("reminder %s was no longer sending at its turn", claimed.reminder_id)
        return Hold(gone=True)
    if row.cancel_reason is not None:  # read before the window: a stop is never put off
        return Hold(stop=row.cancel_reason)
    opens = window_opens(claimed, now, window)
    if opens is not None:
        return Hold(until=opens)
    if claimed.outgoing.channel == "sms":
        unreachable = row.sms_opted_out_at or row.sms_unusable_at
    else:
        unreachable = row.email_opted_out_at or row.email_unusable_at
    if unreachable is not None:  # an unsubscribe, a STOP or a bounce since the claim
        return Hold(stop="opted_out")
    return None


@dataclass
class Turns:
    """A lane's batch as it went, until it is stored: the messages handed over with their
    providers' answers, and the reminders held back at their turns, each with when."""

    handed: list[Handed] = field(default_factory=list)
    held: list[tuple[Claimed, Hold, datetime]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.handed or self.held)

    def clear(self) -> None:
        """Stored: start again."""
        self.handed.clear()
        self.held.clear()

    def back(self, claimed: Claimed, now: datetime) -> None:
        """Not handed over (the run stopped, or the batch took too long): back to `approved`."""
        self.held.append((claimed, Hold(), now))


def settle(session: Session, turns: Turns, report: FlushReport) -> None:
    """Store the batch's results and what was held back, in `session`'s transaction. Each change
    is conditional on the reminder still being `sending`.

    The results are stored grouped (those sent first, in one statement), not in the order the
    reminders are locked elsewhere; so on PostgreSQL all the reminders written here are locked
    first, in one statement and in the order a cancel of waiting reminders locks them
    (state.lock): a payment or reply that cancels several of them waits for this transaction
    instead of holding one it needs while waiting for another, which PostgreSQL would end as a
    deadlock by aborting one of the two."""
    written = [one.claimed.reminder_id for one in turns.handed]
    written += [claimed.reminder_id for claimed, hold, _ in turns.held if not hold.gone]
    if written:
        state.lock(session, [Reminder.id.in_(written)])
    record_sent(session, [one for one in turns.handed if one.delivery.status == "sent"], report)
    for handed in turns.handed:
        if handed.delivery.status != "sent":
            record(session, handed, report)
    for claimed, hold, now in turns.held:
        if hold.gone:
            continue
        reminder_id, attempts = claimed.reminder_id, claimed.attempts - 1
        if hold.stop is not None:
            if state.transition(
                session,
                [reminder_id],
                from_states=(SENDING,),
                to=CANCELLED,
                now=now,
                events=[("reminder.cancelled", {"reason": hold.stop})],
                refresh_loaded=False,
                cancel_reason=hold.stop,
                attempts=attempts,
            ):
                report.cancelled[reminder_id] = hold.stop
            continue
        later: dict[str, Any] = {}
        if hold.until is not None and hold.until != NO_WINDOW:
            later["send_after"] = hold.until
        back, stopped = state.back_to_approved(
            session, [reminder_id], now=now, events=[], attempts=attempts, **later
        )
        report.cancelled.update(stopped)
        if back and hold.until is not None:
            report.rescheduled.append(reminder_id)
