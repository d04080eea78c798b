"""The schedule in local time, with time-machine moving the wall clock under the real scheduler:
the morning plan fires at 08:00 New York time on either side of a DST change, and a service that
was down at 08:00 posts the plan once when it comes back that day (not again on a second start,
and never on a weekend or a public holiday).

The clock stands still and the tests move it: APScheduler waits on the real (monotonic) clock and
reads the wall clock when it wakes, so what runs when does not depend on how fast the machine is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.core.clock import SystemClock
from bot.core.runtime import Runtime, start
from integrations.slack_chat import SlackChat
from scheduler.jobs import declare_jobs
from scheduler.runner import Runner, start_runner
from tests.scheduler.conftest import plan_headers, scheduled_runs
from tests.support.slack_requests import wait_for

NEW_YORK = ZoneInfo("America/New_York")


@contextmanager
def running(runtime: Runtime, slack: SlackChat) -> Iterator[Runner]:
    runner = start_runner(runtime, slack, instance="test:1")
    try:
        yield runner
    finally:
        runner.stop()


def outcome_of(runner: Runner, job: str, starting: str) -> str:
    """Wait for the job's latest outcome to start with `starting`; return it."""

    def done() -> str | None:
        result = runner.status().jobs.get(job)
        if result is not None and result.error:
            raise AssertionError(f"{job} failed: {result.error}")
        if result is not None and result.outcome and result.outcome.startswith(starting):
            return result.outcome
        return None

    outcome: str = wait_for(done)
    return outcome


@pytest.mark.parametrize(
    ("friday", "monday_8am_utc"),
    [
        # Spring forward on Sunday 8 March 2026: 08:00 EDT is 12:00 UTC (it was 13:00).
        (datetime(2026, 3, 6, 9, 0, tzinfo=NEW_YORK), datetime(2026, 3, 9, 12, 0, tzinfo=UTC)),
        # Fall back on Sunday 1 November 2026: 08:00 EST is 13:00 UTC (it was 12:00).
        (datetime(2026, 10, 30, 9, 0, tzinfo=NEW_YORK), datetime(2026, 11, 2, 13, 0, tzinfo=UTC)),
    ],
)
def test_after_a_dst_weekend_the_next_plan_is_due_monday_at_8_local(
    slack_runtime: Runtime, friday: datetime, monday_8am_utc: datetime
) -> None:
    [morning] = [j for j in declare_jobs(slack_runtime, None, "t:1") if j.name == "morning_plan"]
    fires = morning.trigger.get_next_fire_time(None, friday)
    assert fires.astimezone(UTC) == monday_8am_utc
    assert fires.astimezone(NEW_YORK).strftime("%a %H:%M") == "Mon 08:00"


@pytest.mark.slow  # the real scheduler, its wall clock moved by time-machine
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("just_before", "expected_utc"),
    [
        (datetime(2026, 3, 9, 7, 59, 57, tzinfo=NEW_YORK), datetime(2026, 3, 9, 12, 0, tzinfo=UTC)),
        (
            datetime(2026, 11, 2, 7, 59, 57, tzinfo=NEW_YORK),
            datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        ),
    ],
)
def test_the_running_scheduler_plans_at_8_local_on_the_monday_after_a_dst_change(
    ledger: None,
    wall_runtime: Runtime,
    slack_chat: SlackChat,
    slack_api: Any,
    just_before: datetime,
    expected_utc: datetime,
) -> None:
    with (
        time_machine.travel(just_before, tick=False) as clock,
        running(wall_runtime, slack_chat) as runner,
    ):
        outcome_of(runner, "morning_plan", "too early")  # the start-up check, seconds early
        clock.move_to(expected_utc)
        # told to look again now rather than at the end of the 3 s it meant to wait: a job not
        # due at 08:00 local is not run by the wakeup, and then never within the test's patience
        runner._scheduler.wakeup()
        outcome_of(runner, "morning_plan", "planned")  # then the 08:00 firing

    [run] = [r for r in scheduled_runs(wall_runtime) if r.job == "morning_plan"]
    started = run.started_at
    assert started.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S") == (
        expected_utc.astimezone(NEW_YORK).strftime("%Y-%m-%d 08:00:00")
    )
    assert started == expected_utc
    assert plan_headers(slack_api) == [f"Collections plan for {just_before.date().isoformat()}"]


@pytest.mark.slow
def test_a_service_down_at_8_posts_the_plan_once_when_it_comes_back_and_not_again(
    ledger: None, wall_runtime: Runtime, slack_chat: SlackChat, slack_api: Any
) -> None:
    with (
        time_machine.travel(datetime(2026, 3, 16, 11, 0, tzinfo=NEW_YORK), tick=False),
        running(wall_runtime, slack_chat) as runner,
    ):
        outcome_of(runner, "morning_plan", "planned")
    with (
        time_machine.travel(datetime(2026, 3, 16, 12, 0, tzinfo=NEW_YORK), tick=False),
        running(wall_runtime, slack_chat) as runner,
    ):
        assert outcome_of(runner, "morning_plan", "the plan") == (
            "the plan of 2026-03-16 was already made"
        )

    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    assert [(r.job, r.day.isoformat()) for r in scheduled_runs(wall_runtime)] == [
        ("morning_plan", "2026-03-16"),
        ("weekly_review", "2026-03-16"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("local", "holidays", "why"),
    [
        (datetime(2026, 3, 21, 11, 0, tzinfo=NEW_YORK), None, "Saturday"),
        (datetime(2026, 3, 22, 11, 0, tzinfo=NEW_YORK), None, "Sunday"),
        (datetime(2026, 5, 25, 11, 0, tzinfo=NEW_YORK), "US", "Memorial Day"),
        (datetime(2026, 11, 26, 11, 0, tzinfo=NEW_YORK), "US", "Thanksgiving Day"),
    ],
)
def test_a_service_started_on_a_weekend_or_a_holiday_plans_nothing(
    ledger: None,
    slack_settings: Any,
    slack_chat: SlackChat,
    slack_api: Any,
    local: datetime,
    holidays: str | None,
    why: str,
) -> None:
    runtime = start(
        slack_settings.model_copy(update={"holidays_country": holidays}), clock=SystemClock()
    )
    try:
        with time_machine.travel(local, tick=False), running(runtime, slack_chat) as runner:
            assert outcome_of(runner, "morning_plan", "no plan") == (
                f"no plan on {local.date().isoformat()}: {why}"
            )
        assert "morning_plan" not in [r.job for r in scheduled_runs(runtime)]
    finally:
        runtime.close()
    assert plan_headers(slack_api) == []
