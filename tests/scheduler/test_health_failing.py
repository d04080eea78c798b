"""/healthz is degraded, for the token holder, while a scheduled job keeps failing (its last run
failed and none succeeded for longer than its interval, an hour at least) and while a source's
sync failure is being told: the replica still serves, but a person should look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime
from integrations.errors import SourceError
from integrations.wiring import slack_for
from scheduler.health import health
from scheduler.jobs import Job, sync_connected
from scheduler.leader import AlwaysLeader
from scheduler.runner import JobResult, Runner, wall_clock
from tests.bot.ledger import test_crm_sync_failures
from tests.support.fake_hubspot import FakeHubSpot
from tests.support.slack_requests import wait_for

hubspot = test_crm_sync_failures.hubspot  # the HubSpot fake, Ridgeline Roofing its company
with_crm = test_crm_sync_failures.with_crm  # a runtime with HUBSPOT_TOKEN set, Slack and a clock

T0 = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)


def test_a_job_failing_longer_than_its_interval_and_an_hour_degrades_health_and_is_named(
    with_crm: Runtime, hubspot: FakeHubSpot
) -> None:
    slack = slack_for(with_crm.settings)
    sync = Job("sync", IntervalTrigger(minutes=30), lambda: sync_connected(with_crm, slack))
    runner = Runner([sync], AlwaysLeader(), "a:1")
    hubspot.token_refused = "expired"  # every sync fails

    def run_at(at: datetime) -> JobResult:
        clock.move_to(at)
        runner._scheduler.modify_job("sync", next_run_time=wall_clock())
        return wait_for(lambda: _result_at(runner, at))  # type: ignore[no-any-return]

    with time_machine.travel(T0, tick=False) as clock:
        try:
            runner.start()  # the job runs once at once
            first = wait_for(lambda: _result_at(runner, T0))
            assert first.error and first.error.startswith("SourceError: hubspot: HubSpot refused")
            assert _status(with_crm, runner) == ("ok", {})

            run_at(T0 + timedelta(minutes=31))  # failing for longer than its interval
            assert _status(with_crm, runner) == ("ok", {})  # but not for an hour

            run_at(T0 + timedelta(minutes=61))
            status, failing = _status(with_crm, runner)
            assert status == "degraded"
            assert list(failing) == ["sync"]
            assert failing["sync"]["error"].startswith("SourceError: hubspot: HubSpot refused")
            assert failing["sync"]["failing_since"] == T0.isoformat()
            ok, _ = health(with_crm, runner)
            assert ok  # still 200: the replica serves as it should

            hubspot.token_refused = None
            fixed = run_at(T0 + timedelta(minutes=62))
            assert fixed.error is None
            assert _status(with_crm, runner) == ("ok", {})
        finally:
            runner.stop()


def test_a_sync_failure_being_told_degrades_health_until_the_source_syncs_again(
    with_crm: Runtime, hubspot: FakeHubSpot, clock: FixedClock
) -> None:
    slack = slack_for(with_crm.settings)
    sync_connected(with_crm, slack)
    hubspot.token_refused = "expired"
    with pytest.raises(SourceError):
        sync_connected(with_crm, slack)
    assert _failing_sources(with_crm) == ("ok", {})  # not told yet: it may pass by itself

    for _ in range(3):
        clock.advance(timedelta(hours=1))
        with pytest.raises(SourceError):
            sync_connected(with_crm, slack)
    status, failing = _failing_sources(with_crm)
    assert status == "degraded"
    assert list(failing) == ["hubspot"]
    assert failing["hubspot"]["since"] == "2026-03-16T14:00:00+00:00"
    assert "HubSpot refused the token in HUBSPOT_TOKEN" in failing["hubspot"]["reason"]

    hubspot.token_refused = None
    sync_connected(with_crm, slack)
    assert _failing_sources(with_crm) == ("ok", {})


def _result_at(runner: Runner, at: datetime) -> JobResult | None:
    result = runner.status().jobs.get("sync")
    return result if result is not None and result.at == at else None


def _status(runtime: Runtime, runner: Runner) -> tuple[str, dict[str, Any]]:
    _, doc = health(runtime, runner)
    return doc["status"], doc["scheduler"].get("failing", {})


def _failing_sources(runtime: Runtime) -> tuple[str, dict[str, Any]]:
    _, doc = health(runtime, None)
    return doc["status"], doc["last_sync"].get("failing", {})
