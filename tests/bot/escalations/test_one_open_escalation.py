"""One open escalation per customer when a reply opens one while the morning plan runs: the plan
read the customers before the reply committed, and finds the reply's escalation when it writes
its own (`open_many`), adding its reason to it instead of opening a second thread. SQLite's
writing transactions run one at a time (BEGIN IMMEDIATE); on PostgreSQL the plan and a reply not
committed yet can still each open one (see docs/reference/databases.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Escalation, Event
from bot.core.runtime import Runtime
from bot.escalations import service
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

pytestmark = pytest.mark.postgres

TODAY = date(2026, 3, 16)


@pytest.fixture
def customer(runtime: Runtime, database_url: str, tmp_path: Path) -> int:
    """A customer the playbook always hands to a person (never_automate)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writing transactions run one at a time (BEGIN IMMEDIATE)")
    rows = [row(never_automate="true")]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    return 1


def open_escalations(runtime: Runtime) -> list[tuple[int, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Escalation.customer_id, Escalation.reason)
            .where(Escalation.state.in_(service.OPEN_STATES))
            .order_by(Escalation.id)
        )
        return [(customer_id, reason) for customer_id, reason in rows]


def plan(runtime: Runtime, session: Session) -> None:
    run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, runtime.clock.now(), False)


def test_a_reply_committed_after_the_plan_read_its_customers_is_joined_by_the_plan(
    runtime: Runtime, customer: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply commits after the plan read the customers (and found no open escalation),
    before it writes what it planned: the plan finds it when it writes, and adds its reason to
    it."""
    from bot.planning.cash_effect import CashEffectOrder

    now = runtime.clock.now()
    real = CashEffectOrder.apply

    def reply_first(order: CashEffectOrder, items: Any) -> Any:
        with runtime.writing() as reply:
            service.open_or_add(reply, customer, "replied", now)
        return real(order, items)

    monkeypatch.setattr(CashEffectOrder, "apply", reply_first)
    with runtime.writing() as session:
        plan(runtime, session)
    assert open_escalations(runtime) == [(customer, "replied")]
    with runtime.sessions() as session:
        opened = session.scalar(select(func.count()).where(Event.kind == "escalation.opened"))
    assert opened == 1
