"""The morning plan's row in `scheduled_runs` after its first claim: taken again when the run
that had it died making it, or failed before the plan was stored.

- A row still unfinished PLAN_LEASE after it was taken belongs to a run that died (its replica
  killed, or cut off from the database). PLAN_LEASE is well above a live run: 100,000 invoices are
  planned and stored in seconds, and what Slack has not taken by then is posted by the sweep.
- A plan that failed before it was stored is tried again up to PLAN_TRIES times in all, each try
  retry_wait(tries) after the last failure (5, 10, 20, 40 minutes). Its row says so in its
  outcome, `failed (try 2 of 5): …`, which is how the count is kept. A plan that failed after it
  was stored (Slack refused part of it) is not made again: the sweep posts what is missing.

Either is taken with a conditional UPDATE on the claim as it was read (when it was taken, when
it failed), so two replicas never both take it; a plan made again stores and posts nothing twice
(bot/planning/store.py, bot/planning/posting.py)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Reminder, ScheduledRun
from bot.core.runtime import Runtime
from bot.planning import plan_posts, plan_unit

PLAN_LEASE = timedelta(hours=1)
PLAN_TRIES = 5
FIRST_WAIT = timedelta(minutes=5)
_FAILED = re.compile(r"failed \(try (\d+) of \d+\): ")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failed:
    """A day's plan that failed before it was stored."""

    day: date
    tries: int
    error: str
    next_try_at: datetime | None  # None: being tried now, or no try left


def retry_wait(tries: int) -> timedelta:
    """How long the sweep waits after a plan's `tries`-th failure: 5, 10, 20, 40 minutes."""
    doubled: int = 2 ** max(tries - 1, 0)
    return FIRST_WAIT * doubled


def failed_outcome(tries: int, error: str) -> str:
    return f"failed (try {tries} of {PLAN_TRIES}): {error}"


def failed(run: ScheduledRun) -> Failed | None:
    found = _FAILED.match(run.outcome or "")
    if found is None:
        return None
    tries = int(found.group(1))
    next_try_at = None
    if run.finished_at is not None and tries < PLAN_TRIES:
        next_try_at = run.finished_at + retry_wait(tries)
    return Failed(run.day, tries, (run.outcome or "")[found.end() :], next_try_at)


def plan_stored(session: Session, day: date) -> bool:
    """Whether `day`'s plan is stored (what is missing of it in Slack is the sweep's to post)."""
    if plan_posts.row_of(session, day) is not None:
        return True
    return session.scalar(select(Reminder.id).where(Reminder.plan_date == day).limit(1)) is not None


def due(session: Session, run: ScheduledRun, now: datetime) -> bool:
    """Whether the day's row may be taken again now: its run died, or it failed and waited."""
    if run.finished_at is None:
        return now - run.started_at >= PLAN_LEASE
    failure = failed(run)
    return (
        failure is not None
        and failure.next_try_at is not None
        and now >= failure.next_try_at
        and not plan_stored(session, run.day)
    )


def take(runtime: Runtime, day: date, instance: str) -> bool:
    """Take the day's morning plan again when it is due (see `due`); False otherwise."""
    with runtime.sessions() as session:
        run = session.get(ScheduledRun, (plan_unit.MORNING_JOB, day))
        if run is None or not due(session, run, runtime.clock.now()):
            return False
        before, started_at, finished_at = run.instance, run.started_at, run.finished_at
        outcome = run.outcome
    if not take_over_day(runtime, day, instance, started_at, finished_at):
        return False
    if finished_at is None:
        log.warning(
            "the morning plan of %s was left unfinished by %s (taken at %s): %s makes it",
            day,
            before,
            started_at.isoformat(),
            instance,
        )
    else:
        log.warning("the morning plan of %s is tried again by %s after %s", day, instance, outcome)
    return True


def take_over_day(
    runtime: Runtime,
    day: date,
    instance: str,
    started_at: datetime,
    finished_at: datetime | None,
) -> bool:
    """Take the day's row as it was read (taken at `started_at`, finished at `finished_at`);
    False when another run took it or finished it first. The outcome is kept while the plan is
    made again, so a failed plan's count of tries goes on."""
    with runtime.writing() as session:
        taken = session.execute(
            update(ScheduledRun)
            .where(
                ScheduledRun.job == plan_unit.MORNING_JOB,
                ScheduledRun.day == day,
                ScheduledRun.started_at == started_at,
                ScheduledRun.finished_at.is_(None)
                if finished_at is None
                else ScheduledRun.finished_at == finished_at,
            )
            .values(instance=instance, started_at=runtime.clock.now(), finished_at=None)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]
