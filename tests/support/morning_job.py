"""Today's morning job as another replica would leave it in scheduled_runs: still making and
posting the plan (so what shares the finance channel waits for it, bot/planning/plan_unit.py),
or finished."""

from __future__ import annotations

from sqlalchemy import update

from bot.core.models import ScheduledRun
from bot.core.runtime import Runtime
from bot.planning import plan_unit


def morning_job_running(runtime: Runtime) -> None:
    with runtime.writing() as session:
        session.add(
            ScheduledRun(
                job=plan_unit.MORNING_JOB,
                day=runtime.today(),
                instance="another replica",
                started_at=runtime.clock.now(),
            )
        )


def morning_job_finished(runtime: Runtime) -> None:
    with runtime.writing() as session:
        session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.job == plan_unit.MORNING_JOB)
            .values(finished_at=runtime.clock.now())
        )
