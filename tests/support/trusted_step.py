"""A step that earned trust, set up as it happens: 30 strategic customers 3 days late whose
`gentle` reminders a person approved as written today, the trust proposal approved, and four days
later the `gentle` reminders of two newcomers, approved by arbot for the trusted step."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.learning import proposals
from bot.learning.trust_rules import TRUST_AFTER
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)  # the conftest clock: Monday 09:00 in New York
LATER = date(2026, 3, 20)
LATER_NOW = datetime(2026, 3, 20, 14, 0, tzinfo=UTC)
EARNERS = TRUST_AFTER  # strategic customers 3 days late today: the `gentle` step
NEWCOMERS = 2  # strategic customers due tomorrow: `gentle` on LATER


def ledger(tmp_path: Path) -> Path:
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Harbor Dental {n}",
            invoice_number=f"INV-{100 + n}",
            issue_date="2026-02-01",
            due_date="2026-03-13" if n < EARNERS else "2026-03-17",
            amount="1000.00",
            balance="1000.00",
            contact_name="Maria Smith",
            email=f"ap@c{n}.example",
            tier="strategic",
            tags="",
        )
        for n in range(EARNERS + NEWCOMERS)
    ]
    return write(tmp_path / "ledger.csv", rows)


def plan(runtime: Runtime, day: date) -> dict[str, int]:
    """Plan `day` at the clock's time; the stored reminders by invoice number."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        run_plan(session, PlanRules.from_settings(runtime.settings), day, now, False)
    with runtime.sessions() as session:
        return {
            number: reminder_id
            for number, reminder_id in session.execute(
                select(Invoice.number, Reminder.id)
                .join(Customer, Customer.id == Invoice.customer_id)
                .join(Reminder, Reminder.customer_id == Customer.id)
                .where(Reminder.plan_date == day)
            )
        }


def plan_today(runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    """Today's plan: 30 `gentle` reminders waiting (returned), the newcomers' heads-up skipped."""
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger(tmp_path)), runtime.clock.now())
    found = plan(runtime, TODAY)
    newcomers = [found[f"INV-{100 + n}"] for n in range(EARNERS, EARNERS + NEWCOMERS)]
    with runtime.writing() as session:
        for reminder_id in newcomers:
            skipped = approvals.skip(
                session, reminder_id, "U0APPROVER", "called", runtime.clock.now()
            )
            assert skipped.changed
    return {k: v for k, v in found.items() if v not in newcomers}


def approve(runtime: Runtime, ids: list[int]) -> None:
    with runtime.writing() as session:
        for reminder_id in ids:
            decision = approvals.approve(
                session,
                reminder_id,
                "U0APPROVER",
                runtime.clock.now(),
                rules=StaleRules.from_settings(runtime.settings),
            )
            assert decision.changed and decision.state == "approved"


def earn_trust(runtime: Runtime, clock: FixedClock, planned: dict[str, int]) -> list[int]:
    """Today's 30 approved as written and the trust proposal approved; then, on LATER, the plan
    that stores the newcomers' `gentle` reminders approved by arbot (their ids, returned)."""
    approve(runtime, sorted(planned.values()))
    now = runtime.clock.now()
    with runtime.writing() as session:
        (stored,) = proposals.propose_all(session, TODAY, now, runtime.settings.timezone)
        decision = proposals.approve(session, stored.id, "U0APPROVER", now)
        assert decision.status == "active", decision.message
    clock.set(LATER_NOW)
    return sorted(plan(runtime, LATER).values())
