"""The once-a-day jobs are guarded in the database: the morning plan of a date is made and posted
once whoever asks (a restart, a second replica, two at the very same moment), never before the
morning time, and never on a weekend or a public holiday."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from scheduler.business_days import business_days
from scheduler.daily import morning_plan
from tests.scheduler.conftest import CUSTOMERS, plan_headers, scheduled_runs

NEW_YORK = ZoneInfo("America/New_York")


def test_the_morning_plan_is_made_and_posted_once_however_often_it_is_asked(
    ledger: None, slack_runtime: Runtime, slack_api: Any
) -> None:
    calendar = business_days(slack_runtime.settings)

    first = morning_plan(slack_runtime, calendar, "replica-a:101")
    second = morning_plan(slack_runtime, calendar, "replica-b:202")

    assert (
        first == f"planned {CUSTOMERS} reminder(s) and escalation(s), 0 held; posted to C0FINANCE"
    )
    assert second == "the plan of 2026-03-16 was already made"
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    [run] = scheduled_runs(slack_runtime)
    assert (run.job, run.day.isoformat(), run.instance) == (
        "morning_plan",
        "2026-03-16",
        "replica-a:101",
    )
    assert run.finished_at is not None and run.outcome == first
    with slack_runtime.sessions() as session:
        posted = session.scalars(select(Reminder.slack_ts)).all()
    assert len(posted) == CUSTOMERS and all(posted)


def test_no_plan_before_the_morning_time_on_a_weekend_or_on_a_public_holiday(
    ledger: None, slack_runtime: Runtime, clock: FixedClock, slack_api: Any
) -> None:
    settings = slack_runtime.settings
    clock.set(datetime(2026, 3, 16, 7, 59, tzinfo=NEW_YORK))
    assert morning_plan(slack_runtime, business_days(settings), "a:1") == (
        "too early for the plan of 2026-03-16"
    )
    clock.set(datetime(2026, 3, 21, 10, 0, tzinfo=NEW_YORK))
    assert morning_plan(slack_runtime, business_days(settings), "a:1") == (
        "no plan on 2026-03-21: Saturday"
    )
    clock.set(datetime(2026, 5, 25, 10, 0, tzinfo=NEW_YORK))
    us_holidays = business_days(settings.model_copy(update={"holidays_country": "US"}))
    assert morning_plan(slack_runtime, us_holidays, "a:1") == "no plan on 2026-05-25: Memorial Day"
    assert scheduled_runs(slack_runtime) == []
    assert plan_headers(slack_api) == []

    # The same Monday without ARBOT_HOLIDAYS is a business day like any other.
    assert morning_plan(slack_runtime, business_days(settings), "a:1").startswith("planned")


def test_two_replicas_asking_at_the_same_moment_make_one_plan(
    ledger: None, slack_settings: Settings, clock: FixedClock, slack_api: Any
) -> None:
    replicas = [start(slack_settings, clock=clock) for _ in range(2)]
    together = threading.Barrier(len(replicas))
    outcomes: list[str] = []

    def replica(runtime: Runtime, name: str) -> None:
        together.wait()
        outcomes.append(morning_plan(runtime, business_days(runtime.settings), name))

    threads = [
        threading.Thread(target=replica, args=(rt, f"replica-{n}:1"))
        for n, rt in enumerate(replicas)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for rt in replicas:
            rt.close()

    assert sorted(o.split(" ")[0] for o in outcomes) == ["planned", "the"], outcomes
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    assert len(scheduled_runs(replicas[0])) == 1


def test_a_plan_slack_refused_is_stored_once_and_recorded_with_what_to_do(
    ledger: None, slack_runtime: Runtime, slack_api: Any
) -> None:
    slack_api.fail_next("chat.postMessage", "not_in_channel")
    calendar = business_days(slack_runtime.settings)
    with pytest.raises(Exception, match="not_in_channel"):
        morning_plan(slack_runtime, calendar, "a:1")

    [run] = scheduled_runs(slack_runtime)
    assert run.outcome is not None and run.outcome.startswith("failed: the plan is stored")
    assert "run `arbot plan` again" in run.outcome
    assert morning_plan(slack_runtime, calendar, "a:1") == "the plan of 2026-03-16 was already made"
    with slack_runtime.sessions() as session:
        assert len(session.scalars(select(Reminder.id)).all()) == CUSTOMERS
