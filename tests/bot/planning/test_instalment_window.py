"""An instalment of a payment plan is reminded within its days before its date, even when other
invoices of the customer (not on the plan) have ladder steps due then and the frequency cap
spaces the touches: the instalment's reminder goes first, the ladder's step waits for the cap.
When the cap leaves no day in the instalment's window, a person is told instead. Planned a day
at a time through the real flow, each reminder sent when it was due to go."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation, Reminder
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

INSTALMENTS = [(date(2026, 3, 20), Decimal("400.00")), (date(2026, 4, 20), Decimal("800.00"))]


def _plan_on_inv7_and_inv9_outside_it(
    rt: Runtime, clock: FixedClock, tmp_path: Path, inv9_due: str = "2026-03-17"
) -> None:
    rows = [
        row(invoice_number="INV-7", due_date="2026-03-01", balance="1200.00"),
        row(invoice_number="INV-9", due_date=inv9_due, amount="300.00", balance="300.00"),
    ]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", clock.now())
        plans.record(session, escalation.id, "U0APPROVER", "INV-7", INSTALMENTS, clock.now())
        service.resolve(session, escalation.id, "U0APPROVER", "Plan agreed", clock.now())


def _plan_days(rt: Runtime, clock: FixedClock, first: date, last: date) -> dict[date, list[str]]:
    """Plan each day from `first` to `last` at 14:00 UTC and send what was planned when it was
    due to go; the steps of each day's reminders and escalations (``escalate:<step>``)."""
    planned: dict[date, list[str]] = {}
    day = first
    while day <= last:
        clock.set(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14))
        plan_day(rt, day, links=None, slack=None)
        with rt.writing() as session:
            today = session.scalars(select(Reminder).where(Reminder.plan_date == day)).all()
            planned[day] = [
                r.step_key if r.action == "remind" else f"escalate:{r.step_key}" for r in today
            ]
            for reminder in today:
                if reminder.action == "remind":
                    session.execute(
                        update(Reminder)
                        .where(Reminder.id == reminder.id)
                        .values(state="sent", sent_at=reminder.send_after)
                    )
        day += timedelta(days=1)
    return planned


def test_an_instalment_reminder_is_not_crowded_out_by_ladder_steps_of_other_invoices(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    _plan_on_inv7_and_inv9_outside_it(runtime, clock, tmp_path)
    planned = _plan_days(runtime, clock, date(2026, 3, 16), date(2026, 3, 24))
    reminded = [
        day for day, keys in planned.items() for key in keys if key.startswith("instalment-")
    ]
    assert len(reminded) == 1, planned  # the customer is told of the instalment once
    assert date(2026, 3, 17) <= reminded[0] <= date(2026, 3, 20), planned  # before its date
    assert all(len(keys) <= 1 for keys in planned.values()), planned  # one message a day
    with runtime.sessions() as session:
        sent = sorted(
            session.scalars(select(Reminder.sent_at).where(Reminder.state == "sent")).all()
        )
    assert all(b - a >= timedelta(days=3) for a, b in pairwise(sent)), sent
    steps = [key for keys in planned.values() for key in keys]
    assert steps.count("courtesy") == 1 and steps.count("due_today") == 1, planned  # INV-9 too
    assert not any(key.startswith("escalate:") for key in steps), planned


def test_an_escalation_step_of_another_invoice_still_goes_to_a_person_first(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    _plan_on_inv7_and_inv9_outside_it(runtime, clock, tmp_path, inv9_due="2026-02-16")
    planned = _plan_days(runtime, clock, date(2026, 3, 18), date(2026, 3, 18))
    assert planned == {date(2026, 3, 18): ["escalate:plus30"]}


def test_a_cap_that_leaves_no_day_in_the_window_tells_a_person_before_the_instalment(
    runtime: Runtime, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        runtime.settings, "frequency_cap_days", 6
    )  # INV-9's courtesy on the 16th holds until the 22nd
    _plan_on_inv7_and_inv9_outside_it(runtime, clock, tmp_path)
    planned = _plan_days(runtime, clock, date(2026, 3, 16), date(2026, 3, 20))
    steps = [key for keys in planned.values() for key in keys]
    assert steps[0] == "courtesy" and len(steps) == 2, planned
    assert steps[1].startswith("escalate:instalment-"), planned
    assert planned[date(2026, 3, 17)] == [steps[1]], planned  # as soon as the cap is known
    with runtime.sessions() as session:
        escalation = session.scalars(select(Escalation).where(Escalation.state == "open")).one()
    assert "instalment 1 of 2" in escalation.reason and "frequency cap" in escalation.reason
