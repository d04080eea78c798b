"""The missed-promise sweep lifts the pause a promise set, and only that one: a pause a person typed
with `/ar pause` after the promise stays until its own end. Its promise.missed event says whether
a pause was lifted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Event
from bot.core.runtime import Runtime
from bot.escalations import service
from bot.escalations.promises import missed_promises
from bot.ledger import accounts
from tests.support.ledger_files import row

PROMISED = date(2026, 3, 10)  # with two days' grace, missed from Friday the 13th
RECORDED = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def _promised(runtime: Runtime, load: Any) -> int:
    load(row(due_date="2026-03-02"))
    with runtime.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        service.promise(
            session,
            customer_id,
            PROMISED,
            runtime.settings.promise_grace_days,
            RECORDED,
            timezone=runtime.settings.timezone,
        )
    return customer_id


def _missed_event(runtime: Runtime) -> dict[str, Any]:
    with runtime.sessions() as session:
        payload = session.scalars(select(Event.payload).where(Event.kind == "promise.missed")).one()
    return dict(payload)


def test_the_sweep_keeps_a_pause_a_person_set_after_the_promise(
    runtime: Runtime, load: Any, plan: Any
) -> None:
    customer_id = _promised(runtime, load)
    now = runtime.clock.now()  # Monday 16 March, 14:00 UTC
    with runtime.writing() as session:
        accounts.pause(session, "C-1", "1d", "sending a cheque", "U0APPROVER", now)

    with runtime.writing() as session:
        missed = missed_promises(session, runtime.today(), runtime.settings.promise_grace_days, now)

    assert missed == [(customer_id, ["INV-1"])]
    with runtime.sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert customer.paused_until == now + timedelta(days=1)
    event = _missed_event(runtime)
    assert event["pause_lifted"] is None
    assert event["pause_kept_until"] == (now + timedelta(days=1)).isoformat()
    assert [h["reason"] for h in plan()["held"]] == ["paused"]


def test_the_sweep_lifts_the_pause_the_promise_set_and_says_so(runtime: Runtime, load: Any) -> None:
    customer_id = _promised(runtime, load)
    with runtime.sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        promise_pause = customer.paused_until
    assert promise_pause is not None
    # the sweep on the business's last day of grace, late in its evening, the pause ending soon
    late = promise_pause - timedelta(hours=1)

    with runtime.writing() as session:
        missed_promises(session, date(2026, 3, 13), runtime.settings.promise_grace_days, late)

    with runtime.sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert customer.paused_until is None
    event = _missed_event(runtime)
    assert event["pause_lifted"] == promise_pause.isoformat()
    assert event.get("pause_kept_until") is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_pause_set_before_the_promise_and_ending_later_is_kept(
    runtime: Runtime, load: Any
) -> None:
    load(row(due_date="2026-03-02"))
    with runtime.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        paused = accounts.pause(session, "C-1", "2w", "on holiday", "U0APPROVER", RECORDED)
        until = paused.customer.paused_until
        service.promise(
            session, customer_id, PROMISED, 2, RECORDED, timezone=runtime.settings.timezone
        )

    with runtime.writing() as session:
        missed_promises(session, runtime.today(), 2, runtime.clock.now())

    with runtime.sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert customer.paused_until == until
