"""A morning plan that fails before it is stored is tried again by the sweep, a bounded number
of times with a growing wait; the finance channel is told once, at the first failure, and
/healthz says degraded while the day's plan has failed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime
from bot.learning.versions import ensure_active
from integrations.wiring import slack_for
from scheduler.business_days import business_days
from scheduler.daily import PLAN_TRIES, morning_plan
from scheduler.health import health
from scheduler.jobs import declare_jobs
from tests.scheduler.conftest import CUSTOMERS, plan_headers, scheduled_runs

NEW_YORK = ZoneInfo("America/New_York")
MORNING = datetime(2026, 3, 16, 8, 0, 5, tzinfo=NEW_YORK)


def _sweep(runtime: Runtime) -> str:
    [job] = [
        j for j in declare_jobs(runtime, slack_for(runtime.settings), "a:1") if j.name == "sweep"
    ]
    return job.run()


@contextmanager
def _broken_playbook(runtime: Runtime) -> Iterator[None]:
    """The active playbook version as stored is not a playbook: planning fails before storing."""
    with runtime.writing() as session:
        version = ensure_active(session, runtime.clock.now())
        good, version.content = version.content, "{"
    yield
    with runtime.writing() as session:
        ensure_active(session, runtime.clock.now()).content = good


def _plan_outcome(runtime: Runtime) -> str | None:
    [run] = [r for r in scheduled_runs(runtime) if r.job == "morning_plan"]
    return run.outcome


def _notes(slack_api: Any) -> list[str]:
    return [
        str(c.get("text", ""))
        for c in slack_api.calls("chat.postMessage")
        if "morning plan" in str(c.get("text", ""))
    ]


def test_a_failed_plan_is_told_once_tried_again_by_the_sweep_and_made(
    ledger: None, slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    calendar = business_days(slack_runtime.settings)
    clock.set(MORNING)
    with _broken_playbook(slack_runtime):
        with pytest.raises(ValueError):  # the stored playbook is not JSON
            morning_plan(slack_runtime, calendar, "a:1")
        assert (_plan_outcome(slack_runtime) or "").startswith(f"failed (try 1 of {PLAN_TRIES})")
        [note] = _notes(slack_api)
        assert "2026-03-16" in note and "tried again" in note
        _, doc = health(slack_runtime, None)
        assert doc["status"] == "degraded"
        assert doc["plan_failed"]["tries"] == 1

        clock.set(MORNING + timedelta(minutes=1))  # before its wait: not tried yet
        _sweep(slack_runtime)
        assert (_plan_outcome(slack_runtime) or "").startswith("failed (try 1 ")

        clock.set(MORNING + timedelta(minutes=6))  # tried again, fails again, not told again
        _sweep(slack_runtime)
        assert (_plan_outcome(slack_runtime) or "").startswith("failed (try 2 ")
        assert len(_notes(slack_api)) == 1
        assert plan_headers(slack_api) == []

    clock.set(MORNING + timedelta(minutes=30))
    _sweep(slack_runtime)
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    assert _plan_outcome(slack_runtime) == (
        f"planned {CUSTOMERS} reminder(s) and escalation(s), 0 held; posted to C0FINANCE"
    )
    _, doc = health(slack_runtime, None)
    assert doc["status"] == "ok" and doc["plan_failed"] is None
    assert morning_plan(slack_runtime, calendar, "a:1") == "the plan of 2026-03-16 was already made"


def test_a_plan_that_keeps_failing_is_tried_a_bounded_number_of_times(
    ledger: None, slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    calendar = business_days(slack_runtime.settings)
    clock.set(MORNING)
    with _broken_playbook(slack_runtime):
        with pytest.raises(ValueError):  # the stored playbook is not JSON
            morning_plan(slack_runtime, calendar, "a:1")
        for minutes in range(5, 8 * 60, 5):  # every sweep of the day
            clock.set(MORNING + timedelta(minutes=minutes))
            _sweep(slack_runtime)
        assert (_plan_outcome(slack_runtime) or "").startswith(
            f"failed (try {PLAN_TRIES} of {PLAN_TRIES})"
        )
        assert len(_notes(slack_api)) == 1
        _, doc = health(slack_runtime, None)
        assert doc["plan_failed"] is not None, doc
        assert doc["status"] == "degraded" and doc["plan_failed"]["next_try_at"] is None
