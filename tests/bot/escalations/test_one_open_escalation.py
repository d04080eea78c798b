"""One open escalation per customer, even when two writers open one at once: a reply's
`open_or_add` beside another, or beside the morning plan's bulk `open_many`. On PostgreSQL, in
read committed, each would otherwise see no open escalation (the other's not committed yet) and
insert its own, and the account would have two threads for two people; SQLite's writing
transactions already run one at a time (BEGIN IMMEDIATE)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.core.models import Escalation, Event
from bot.core.runtime import Runtime
from bot.escalations import service
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

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


def meanwhile(
    pool: ThreadPoolExecutor, runtime: Runtime, work: Callable[[Any], Any]
) -> Future[Any]:
    """Run `work` in a transaction of its own, in `pool`'s thread, and return once it has
    committed or waits for a lock another transaction holds (pg_blocking_pids)."""
    backend: list[int] = []

    def run() -> Any:
        with runtime.writing() as session:
            backend.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            return work(session)

    def waits() -> bool:
        with runtime.engine.connect() as probe:
            blockers = probe.execute(
                text("SELECT pg_blocking_pids(:pid)"), {"pid": backend[0]}
            ).scalar_one()
        return bool(blockers)

    done = pool.submit(run)
    wait_for(lambda: done.done() or (backend and waits()))
    return done


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


def test_two_replies_at_once_open_one_escalation_and_the_second_adds_its_reason(
    runtime: Runtime, customer: int
) -> None:
    now = runtime.clock.now()
    with ThreadPoolExecutor(1) as pool:
        with runtime.writing() as session:
            service.open_or_add(session, customer, "replied", now)
            second = meanwhile(
                pool, runtime, lambda s: service.open_or_add(s, customer, "disputed", now)[1]
            )
        assert second.result() is False  # not new: added to the first
    assert open_escalations(runtime) == [(customer, "replied")]


def test_a_reply_while_the_plan_runs_and_the_plan_open_one_escalation(
    runtime: Runtime, customer: int
) -> None:
    """The reply opens the customer's escalation, not committed yet, as the plan (which read
    no open escalation for it) writes its own: the plan waits for the reply, then adds its
    reason to the reply's escalation, with no `escalation.opened` of its own."""
    now = runtime.clock.now()
    with ThreadPoolExecutor(1) as pool:
        with runtime.writing() as session:
            service.open_or_add(session, customer, "replied", now)
            planned = meanwhile(pool, runtime, lambda s: plan(runtime, s))
        planned.result()
    assert open_escalations(runtime) == [(customer, "replied")]
    with runtime.sessions() as session:
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("escalation.%"))).all()
    assert sorted(kinds) == ["escalation.added", "escalation.opened"]


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


def test_a_plan_escalating_thousands_of_customers_takes_one_lock_not_one_each(
    runtime: Runtime, customer: int
) -> None:
    """A big book's plan escalates thousands of customers in one transaction. PostgreSQL keeps
    every advisory lock a transaction holds in a shared table of max_locks_per_transaction
    times max_connections slots (6,400 by default, with some slack: 16,000 failed here): a lock
    for each customer would fill it and fail the plan ('out of shared memory'), so the lock on opening escalations is one for the
    schema, which a reply still waits for."""
    from bot.core.locks import lock_escalations

    with runtime.sessions() as session:
        slots = session.execute(
            text(
                "SELECT current_setting('max_locks_per_transaction')::int"
                " * current_setting('max_connections')::int"
            )
        ).scalar_one()
    now = runtime.clock.now()
    with ThreadPoolExecutor(1) as pool:
        with runtime.writing() as session:
            lock_escalations(session, range(1, 4 * slots))  # past the table's slack too
            reply = meanwhile(
                pool, runtime, lambda s: service.open_or_add(s, customer, "replied", now)[1]
            )
            assert not reply.done()  # waits for the plan's transaction
        assert reply.result() is True
    assert open_escalations(runtime) == [(customer, "replied")]
