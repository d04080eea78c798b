"""The reminder state machine: every move of a reminder from one state to another goes through here.

DESIGN: planned → approved → sending → sent, with skipped, cancelled, failed and unknown as ends;
Undo takes an approved reminder back to planned until the send worker takes it.
The send worker moves a batch to `sending` before it sends any of them; a cancel of waiting
reminders that finds one of them there asks for it to stop instead (its `cancel_reason`, the state
left as it is), and the worker cancels it at its turn unless it has gone out already. On
PostgreSQL such a cancel first locks the reminders it may change, so that none moves between
`sending` and `approved` under it.
From `sending`: → `cancelled` when a stop was asked for after the claim (at its turn, or instead
of any move back); → `approved` only when none was (`back_to_approved`: never handed over because
its window closed, its batch ran late or its lane stopped, or a transient error or an outage).
A move is one conditional UPDATE (`... WHERE state IN <from>`) whose RETURNING says which reminders
moved; those, and only those, get their audit Events, in the same transaction. A double click, a
Slack retry or a second worker therefore changes nothing and writes nothing the second time. A move
that ALLOWED does not list is a programming error: it raises before anything is written.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Reminder
from bot.core.vocabulary import ReminderState

PLANNED = ReminderState.PLANNED
APPROVED = ReminderState.APPROVED
SENDING = ReminderState.SENDING
SENT = ReminderState.SENT
SKIPPED = ReminderState.SKIPPED
CANCELLED = ReminderState.CANCELLED
FAILED = ReminderState.FAILED
UNKNOWN = ReminderState.UNKNOWN

# From each state, where a reminder may go next (and who moves it there).
ALLOWED: dict[ReminderState, frozenset[ReminderState]] = {
    # approve or edit; skip; stale at approval, paid, paused, opted out
    PLANNED: frozenset({APPROVED, SKIPPED, CANCELLED}),
    # the send claim; stale at claim, paid, paused; a person's Undo before the claim; a person's
    # Skip of a reminder a trusted step approved, before the claim
    APPROVED: frozenset({SENDING, CANCELLED, PLANNED, SKIPPED}),
    # the provider's answer: sent; a transient error or an outage puts it back; a permanent error;
    # no answer, or the worker died (its lease lapsed); cancelled at its turn, never handed over
    # (a stop asked for since its batch was claimed)
    SENDING: frozenset({SENT, APPROVED, FAILED, UNKNOWN, CANCELLED}),
    # a delivery report or a bounce after the fact
    SENT: frozenset({FAILED}),
    UNKNOWN: frozenset({FAILED}),  # a bounce proves it went out, and failed
    SKIPPED: frozenset(),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
}

# An audit Event appended for each reminder moved: its kind and payload.
AuditEvent = tuple[str, dict[str, Any]]


class TransitionNotAllowed(ValueError):
    """A move the state machine does not have: a bug in the caller, never a user's mistake."""


def check(from_states: Collection[ReminderState], to: ReminderState) -> None:
    """Raise unless every move from `from_states` to `to` is in ALLOWED."""
    if not from_states:
        raise TransitionNotAllowed(f"a move to {to} needs the state(s) it starts from")
    for start in from_states:
        if to not in ALLOWED[ReminderState(start)]:
            raise TransitionNotAllowed(f"a reminder cannot go from {start} to {to}")


def transition(
    session: Session,
    ids: Collection[int] | None,
    *,
    from_states: Collection[ReminderState],
    to: ReminderState,
    now: datetime,
    events: Sequence[AuditEvent],
    actor: str = audit.SYSTEM,
    where: Sequence[ColumnElement[bool]] = (),
    refresh_loaded: bool = True,
    **values: Any,
) -> list[int]:
    """Move the reminders `ids` that are still in one of `from_states` to `to`, and return the ids
    that moved, each with `events` appended (in that order, by `actor`). `values` are the other
    columns the move sets (`updated_at` is always `now`); `where` adds conditions to the UPDATE
    (a lease, an action). `ids=None` moves every reminder `where` selects (it must select some).
    `refresh_loaded=False` leaves Reminder objects already loaded in the session as they are, for
    bulk callers that do not read them again."""
    check(from_states, to)
    if ids is not None and not ids:
        return []
    criteria = _chosen(ids, _in(from_states), where)
    statement = (
        update(Reminder)
        .where(*criteria)
        .values(state=to.value, updated_at=now, **values)
        .returning(Reminder.id, Reminder.customer_id)
    )
    if not refresh_loaded:
        statement = statement.execution_options(synchronize_session=False)
    moved = session.execute(statement).all()
    for reminder_id, customer_id in moved:
        for kind, payload in events:
            audit.record(
                session,
                now,
                kind,
                actor=actor,
                customer_id=customer_id,
                reminder_id=reminder_id,
                payload=payload,
            )
    return [reminder_id for reminder_id, _ in moved]


def _chosen(
    ids: Collection[int] | None,
    in_state: ColumnElement[bool],
    where: Sequence[ColumnElement[bool]],
) -> list[ColumnElement[bool]]:
    """The conditions that choose the reminders `ids` (None: those `where` selects) whose state
    meets `in_state`. Raises when neither ids nor `where` names any."""
    criteria = [in_state, *where]
    if ids is not None:
        criteria.append(Reminder.id.in_(list(ids)))
    elif not where:
        raise TransitionNotAllowed("name the reminders to move: ids, or conditions in where")
    return criteria


def _in(states: Collection[ReminderState]) -> ColumnElement[bool]:
    return Reminder.state.in_([ReminderState(s).value for s in states])


def _sending_unstopped() -> ColumnElement[bool]:
    """Claimed by the send worker, with no stop asked for yet."""
    return and_(Reminder.state == SENDING.value, Reminder.cancel_reason.is_(None))


def prepared_move(from_state: ReminderState, to: ReminderState, **values: Any) -> Update:
    """One reminder's move from `from_state` to `to` as a statement built once, for a loop that
    makes the same move many times (the send worker; `transition` builds its statement anew each
    call). Execute it with `reminder_id` and `moved_at` (and the bind parameters in `values`): it
    moves the reminder only if it is still in `from_state`, its rowcount says whether it did, and
    the caller appends the move's Event when it did."""
    check((from_state,), to)
    table: Any = Reminder.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("reminder_id"), table.c.state == from_state.value)
        .values(state=to.value, updated_at=bindparam("moved_at"), **values)
    )


def back_to_approved(
    session: Session,
    ids: Collection[int],
    *,
    now: datetime,
    events: Sequence[AuditEvent],
    attempts: Any = None,
    **values: Any,
) -> tuple[list[int], dict[int, str]]:
    """Put `sending` reminders never handed over, or that met a transient error, back to
    `approved` (`values` as the move sets them, `events` appended to those moved), unless a stop
    was asked for since their claim (`cancel_reason`): those are cancelled with that reason and
    its `reminder.cancelled` Event instead, as any other cancel. `attempts`, when given, is set
    on both. Returns the ids put back, and those cancelled with their reasons."""
    if not ids:
        return [], {}
    counted = {} if attempts is None else {"attempts": attempts}
    # The move back comes first. A cancel that holds the row (see `cancel`) makes it wait, and
    # it then finds the stop and leaves the row to the next statement; in the other order, a
    # stop committed between the two would match neither, and the reminder stay `sending`
    # until its lease ran out.
    back = transition(
        session,
        ids,
        from_states=(SENDING,),
        to=APPROVED,
        now=now,
        events=events,
        where=[Reminder.cancel_reason.is_(None)],
        refresh_loaded=False,
        **counted,
        **values,
    )
    moved = set(back)
    left = [one for one in ids if one not in moved]
    return back, _stopped(session, left, now, counted)


def cancel_sending(
    session: Session, ids: Collection[int], *, reason: str, now: datetime
) -> tuple[list[int], dict[int, str]]:
    """Cancel `sending` reminders that will not be handed over (their copies cannot be had) with
    `reason`, unless a stop was asked for since their claim (`cancel_reason`: a payment, reply,
    dispute...): those are cancelled with that reason instead, as `back_to_approved` does, so
    the reason a person is told is the one that stopped them first. Returns the ids cancelled
    with `reason`, and those cancelled with their stops."""
    if not ids:
        return [], {}
    # The unstopped first, as in back_to_approved: a stop committed between the two statements
    # is then found by the second.
    cancelled = transition(
        session,
        ids,
        from_states=(SENDING,),
        to=CANCELLED,
        now=now,
        events=[("reminder.cancelled", {"reason": reason})],
        where=[Reminder.cancel_reason.is_(None)],
        refresh_loaded=False,
        cancel_reason=reason,
    )
    moved = set(cancelled)
    return cancelled, _stopped(session, [one for one in ids if one not in moved], now, {})


def _stopped(
    session: Session, ids: Collection[int], now: datetime, counted: dict[str, Any]
) -> dict[int, str]:
    """Cancel the `sending` reminders among `ids` that a stop was asked for since their claim,
    each with that stop's reason and its `reminder.cancelled` Event; returns them with their
    reasons."""
    if not ids:
        return {}
    table: Any = Reminder.__table__
    stopped = session.execute(
        update(table)
        .where(
            table.c.id.in_(list(ids)),
            table.c.state == SENDING.value,
            table.c.cancel_reason.is_not(None),
        )
        .values(state=CANCELLED.value, updated_at=now, **counted)
        .returning(table.c.id, table.c.customer_id, table.c.cancel_reason)
    ).all()
    cancelled: dict[int, str] = {}
    for reminder_id, customer_id, reason in stopped:
        audit.record(
            session,
            now,
            "reminder.cancelled",
            customer_id=customer_id,
            reminder_id=reminder_id,
            payload={"reason": reason},
        )
        cancelled[reminder_id] = reason
    return cancelled


def cancel(
    session: Session,
    ids: Collection[int] | None,
    *,
    from_states: Collection[ReminderState],
    reason: str,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
    refresh_loaded: bool = True,
) -> list[int]:
    """Cancel with a reason (paid, disputed, paused, opted_out, superseded, ...): the reason is
    stored on the reminder and in its `reminder.cancelled` Event. A cancel of `approved` reminders
    also asks those the send worker has claimed since (`sending`, maybe not handed over yet) to
    stop: the reason is stored on them and the worker cancels each at its turn (see
    bot/reminders/sending.py); they are not among the ids returned."""
    check(from_states, CANCELLED)
    asks_sending = APPROVED in from_states and (ids is None or bool(ids))
    if asks_sending:
        lock(session, cancellable(ids, from_states, where))
    cancelled = transition(
        session,
        ids,
        from_states=from_states,
        to=CANCELLED,
        now=now,
        events=[("reminder.cancelled", {"reason": reason})],
        where=where,
        refresh_loaded=refresh_loaded,
        cancel_reason=reason,
    )
    if asks_sending:
        session.execute(
            update(Reminder)
            .where(*_chosen(ids, _sending_unstopped(), where))
            .values(cancel_reason=reason)
            .execution_options(synchronize_session=False)
        )
    return cancelled


def cancellable(
    ids: Collection[int] | None,
    from_states: Collection[ReminderState],
    where: Sequence[ColumnElement[bool]] = (),
) -> list[ColumnElement[bool]]:
    """The conditions that choose exactly the reminders a `cancel` of `ids` (None: those `where`
    selects) from `from_states` may change: those still in one of `from_states`, and those
    `sending` with no stop asked for yet. One `sending` with a stop already is left out: the
    cancel does not change it, and the send worker may hold it (cancelled at its turn) while it
    waits for another it puts back to `approved`."""
    return _chosen(ids, or_(_in(from_states), _sending_unstopped()), where)


def lock_cancellable(
    session: Session,
    choices: Sequence[ColumnElement[bool]],
    from_states: Collection[ReminderState],
) -> None:
    """On PostgreSQL, lock in one pass, in `lock`'s order, every reminder that several cancels
    from `from_states` may change, each cancel's reminders chosen by one of `choices` (nothing
    for no choices). A writer whose cancels each locked theirs in turn would take them out of
    that order when a later cancel's come first: holding one while it waits for another, it
    would deadlock with a writer that holds that other while it waits for this one. Each cancel
    then finds its reminders held already."""
    if choices:
        lock(session, cancellable(None, from_states, [or_(*choices)]))


def lock(session: Session, criteria: Sequence[ColumnElement[bool]]) -> None:
    """On PostgreSQL, lock the reminders `criteria` selects, in (send_after, id) order. These
    writers of several reminders take their locks in this one order, so that two of them wait
    for one another instead of each holding a row the other needs: a cancel of waiting reminders
    (before its two statements: a worker's move from `sending` back to `approved` committed
    between them would match neither, and the reminder go out on the next run), a payment or a
    ledger import that cancels reminders for several reasons (all of them before its first
    cancel, and an import before it changes any contact: `lock_cancellable`,
    bot/ledger/upsert.py), the send worker's storing of a batch's results
    (bot/reminders/turns.py `settle`, which locks all it will write first), and its marking of
    those found `sending` past their lease (bot/reminders/outbox.py `recover`). The send
    worker's claim reads due reminders in this order too and skips those locked
    (bot/reminders/outbox.py), and its move of claimed ones to `sending` follows the claim's
    order. SQLite's writing transactions already run one at a time (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        select(Reminder.id)
        .where(*criteria)
        .order_by(Reminder.send_after, Reminder.id)
        .with_for_update(of=Reminder)
    )
