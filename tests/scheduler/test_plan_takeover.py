"""A morning plan whose replica died while making it is made by the sweep once its claim is
older than the plan's lease, and by one replica only."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.clock import FixedClock
from bot.core.models import ScheduledRun
from bot.core.runtime import Runtime
from integrations.wiring import slack_for
from scheduler.business_days import business_days
from scheduler.daily import morning_plan
from scheduler.jobs import declare_jobs
from scheduler.plan_claim import PLAN_LEASE, take_over_day
from tests.scheduler.conftest import CUSTOMERS, plan_headers, scheduled_runs

NEW_YORK = ZoneInfo("America/New_York")


def _sweep(runtime: Runtime, instance: str) -> str:
    [job] = [
        j for j in declare_jobs(runtime, slack_for(runtime.settings), instance) if j.name == "sweep"
    ]
    return job.run()


def test_a_plan_whose_replica_died_making_it_is_made_by_the_sweep_after_its_lease(
    ledger: None, slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    started = datetime(2026, 3, 16, 8, 0, 5, tzinfo=NEW_YORK)
    with slack_runtime.writing() as session:  # replica A took the day and was killed
        session.add(
            ScheduledRun(job="morning_plan", day=started.date(), instance="a:1", started_at=started)
        )

    clock.set(started + PLAN_LEASE / 2)  # A may still be planning: nobody else does
    _sweep(slack_runtime, "b:2")
    assert plan_headers(slack_api) == []

    clock.set(started + PLAN_LEASE + (PLAN_LEASE / 12))
    _sweep(slack_runtime, "b:2")
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    [run] = [r for r in scheduled_runs(slack_runtime) if r.job == "morning_plan"]
    assert run.instance == "b:2" and run.finished_at is not None
    assert run.outcome == (
        f"planned {CUSTOMERS} reminder(s) and escalation(s), 0 held; posted to C0FINANCE"
    )

    calendar = business_days(slack_runtime.settings)
    assert morning_plan(slack_runtime, calendar, "c:3") == "the plan of 2026-03-16 was already made"
    _sweep(slack_runtime, "c:3")
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]


def test_two_replicas_taking_over_one_dead_claim_make_one_plan(
    ledger: None, slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    started = datetime(2026, 3, 16, 8, 0, 5, tzinfo=NEW_YORK)
    with slack_runtime.writing() as session:
        session.add(
            ScheduledRun(job="morning_plan", day=started.date(), instance="a:1", started_at=started)
        )
    clock.set(started + PLAN_LEASE * 2)
    with slack_runtime.sessions() as session:
        seen = session.get(ScheduledRun, ("morning_plan", started.date()))
        assert seen is not None
        stale_start = seen.started_at
    # Both read the same stale claim; only the first conditional update takes it.
    assert take_over_day(slack_runtime, started.date(), "b:2", stale_start, None)
    assert not take_over_day(slack_runtime, started.date(), "c:3", stale_start, None)
