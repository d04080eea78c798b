"""The reminder state machine: every allowed move works once, every other move raises."""

from __future__ import annotations

from itertools import product

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Event, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import WAITING, ReminderState
from bot.reminders import state
from tests.conftest import NOW

# DESIGN's state machine, written out: planned → approved → sending → sent, with skipped,
# cancelled, failed and unknown as ends; a send may go back to approved (a retry or an outage),
# and a sent or unknown message may still turn out to have failed (a report, a bounce).
MOVES = {
    ("planned", "approved"),
    ("planned", "skipped"),
    ("planned", "cancelled"),
    ("approved", "sending"),
    ("approved", "cancelled"),
    ("approved", "planned"),  # Undo, before the send worker takes it
    ("approved", "skipped"),  # Skip of a trusted step's reminder, before the send worker takes it
    ("sending", "sent"),
    ("sending", "approved"),
    ("sending", "failed"),
    ("sending", "unknown"),
    ("sending", "cancelled"),  # claimed with its batch, stopped at its turn before its send
    ("sent", "failed"),
    ("unknown", "failed"),
}
NOT_MOVES = sorted(set(product(ReminderState, ReminderState)) - MOVES)


def a_reminder(session: Session, in_state: str) -> int:
    customer = Customer(
        source="test",
        external_id=f"C-{in_state}",
        name=f"Customer {in_state}",
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(customer)
    session.flush()
    reminder = Reminder(
        customer_id=customer.id,
        plan_date=NOW.date(),
        step_key="plus7",
        idempotency_key=f"test:{in_state}",
        state=in_state,
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(reminder)
    session.flush()
    return reminder.id


def test_the_table_is_designs_state_machine_and_ends_go_nowhere() -> None:
    assert {(a, b) for a, tos in state.ALLOWED.items() for b in tos} == MOVES
    assert set(state.ALLOWED) == set(ReminderState)
    ends = ("skipped", "cancelled", "failed")
    assert all(state.ALLOWED[ReminderState(end)] == frozenset() for end in ends)


@pytest.mark.parametrize(("start", "end"), sorted(MOVES))
def test_every_allowed_move_changes_the_state_once_and_appends_its_events(
    runtime: Runtime, start: str, end: str
) -> None:
    later = runtime.clock.now()
    with runtime.writing() as session:
        reminder_id = a_reminder(session, start)
    with runtime.writing() as session:
        moved = state.transition(
            session,
            [reminder_id],
            from_states=(ReminderState(start),),
            to=ReminderState(end),
            now=later,
            actor="U0MOVER",
            events=[("test.first", {"to": end}), ("test.second", {})],
            error="why",
        )
        again = state.transition(
            session,
            [reminder_id],
            from_states=(ReminderState(start),),
            to=ReminderState(end),
            now=later,
            actor="U0SECOND",
            events=[("test.first", {"to": end})],
        )
    assert (moved, again) == ([reminder_id], [])
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        events = session.execute(
            select(Event.kind, Event.actor, Event.customer_id, Event.payload).order_by(Event.id)
        ).all()
    assert reminder is not None
    assert (reminder.state, reminder.error, reminder.updated_at) == (end, "why", later)
    assert [tuple(e) for e in events] == [
        ("test.first", "U0MOVER", reminder.customer_id, {"to": end}),
        ("test.second", "U0MOVER", reminder.customer_id, {}),
    ]


def test_every_other_move_raises_and_writes_nothing(runtime: Runtime) -> None:
    assert len(NOT_MOVES) == 8 * 8 - len(MOVES)
    with runtime.writing() as session:
        ids = {s: a_reminder(session, s) for s in ReminderState}
    for start, end in NOT_MOVES:
        with pytest.raises(state.TransitionNotAllowed), runtime.writing() as session:
            state.transition(
                session,
                [ids[start]],
                from_states=(start,),
                to=end,
                now=NOW,
                events=[("test.moved", {})],
            )
    with runtime.sessions() as session:
        states = dict(session.execute(select(Reminder.id, Reminder.state)).all())
        assert session.scalars(select(Event)).all() == []
    assert states == {ids[s]: s for s in ReminderState}


def test_one_bad_start_among_several_refuses_the_whole_move(runtime: Runtime) -> None:
    with runtime.writing() as session:
        planned = a_reminder(session, "planned")
        with pytest.raises(state.TransitionNotAllowed, match="from sent to cancelled"):
            state.cancel(
                session,
                [planned],
                from_states=(ReminderState.PLANNED, ReminderState.SENT),
                reason="paid",
                now=NOW,
            )
        assert session.get(Reminder, planned).state == "planned"  # type: ignore[union-attr]


def test_a_move_must_name_its_reminders_and_where_it_starts() -> None:
    with pytest.raises(state.TransitionNotAllowed, match="name the reminders"):
        state.cancel(None, None, from_states=WAITING, reason="paid", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(state.TransitionNotAllowed, match="needs the state"):
        state.check((), ReminderState.CANCELLED)


def test_cancel_stores_the_reason_on_the_reminder_and_in_its_event(runtime: Runtime) -> None:
    with runtime.writing() as session:
        ids = [a_reminder(session, "planned"), a_reminder(session, "approved")]
        sending = a_reminder(session, "sending")
    with runtime.writing() as session:
        cancelled = state.cancel(
            session,
            None,
            from_states=(ReminderState.PLANNED, ReminderState.APPROVED),
            reason="paused",
            now=NOW,
            where=[Reminder.id.in_([*ids, sending])],
        )
    assert sorted(cancelled) == sorted(ids)
    with runtime.sessions() as session:
        rows = session.execute(select(Reminder.id, Reminder.state, Reminder.cancel_reason)).all()
        events = session.execute(select(Event.reminder_id, Event.kind, Event.payload)).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [
            (ids[0], "cancelled", "paused"),
            (ids[1], "cancelled", "paused"),
            (sending, "sending", "paused"),  # a stop asked for: the send worker cancels it
        ]
    )
    assert sorted(tuple(e) for e in events) == sorted(
        (rid, "reminder.cancelled", {"reason": "paused"}) for rid in ids
    )
