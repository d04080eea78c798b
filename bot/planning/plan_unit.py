"""The day's plan goes into the finance channel as one unit: nothing else of the scheduler's (the
weekly review, bank payments to place, messages that matched nobody, escalations when they share
the channel) is posted while the plan's messages are going out or half out waiting for a retry.

The wait has a bound, PLAN_WAIT from when the plan began going out (the morning job's start, else
its first refused attempt): a plan Slack keeps refusing must not hold everything else for the
day. Past it, the others are posted anyway, and the weekly review says that the plan is not all
in Slack yet (`still_missing_line`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import slack_claims
from bot.core.models import PlanPost, Reminder, ScheduledRun
from bot.planning import plan_posts

PLAN_WAIT = timedelta(hours=1)
MORNING_JOB = "morning_plan"  # the scheduler's job that plans and posts the day (scheduled_runs)


@dataclass(frozen=True, slots=True)
class Unfinished:
    """Today's plan is not all in Slack yet."""

    day: date
    why: str  # "being made", "being posted", "12 of 56 cards not in Slack yet"
    missing: int  # cards not in Slack (0 while it is being made)
    last_error: str | None  # what Slack answered last, when it refused
    since: datetime  # when the plan began going out

    def overdue(self, now: datetime) -> bool:
        """Waited long enough: what waits for the plan goes out anyway."""
        return now - self.since >= PLAN_WAIT


def unfinished(session: Session, day: date, now: datetime) -> Unfinished | None:
    """Whether `day`'s plan is going out, or half out, in the finance channel; None when it is
    all there, or was never sent there (no plan made, or Slack not set up)."""
    run = session.get(ScheduledRun, (MORNING_JOB, day))
    row = plan_posts.row_of(session, day)
    starts = [t for t in (run.started_at if run else None, _began(row)) if t is not None]
    if run is not None and run.finished_at is None:  # planning, polishing or posting now
        return Unfinished(day, "being made", 0, None, min(starts))
    if row is None:
        return None
    unposted, total = session.execute(
        select(
            func.count(Reminder.id).filter(Reminder.slack_ts.is_(None)),
            func.count(Reminder.id),
        ).where(Reminder.plan_date == day, Reminder.action == "remind")
    ).one()
    posting = row.slack_claimed_at is not None and (
        row.slack_claimed_at >= now - slack_claims.CLAIM_LEASE
    )
    since = min(starts) if starts else now
    if unposted:
        why = f"{unposted} of {total} card(s) not in Slack yet"
        return Unfinished(day, why, unposted, row.last_error, since)
    if posting or (row.header_ts is None and row.failures):
        return Unfinished(day, "being posted", 0, row.last_error, since)
    if row.late_notice:  # its last part: the word on what came late
        return Unfinished(day, "its late notice not posted yet", 0, row.last_error, since)
    return None


def _began(row: PlanPost | None) -> datetime | None:
    if row is None:
        return None
    times = [t for t in (row.late_since, row.slack_claimed_at) if t is not None]
    return min(times) if times else None


def still_missing_line(gap: Unfinished) -> str:
    """Said by a post that went out before the plan was all in Slack (past PLAN_WAIT)."""
    answered = f"; Slack answered `{gap.last_error}`" if gap.last_error else ""
    return (
        f":warning: Today's plan ({gap.day.isoformat()}) is not all in Slack yet ({gap.why}"
        f"{answered}): this was posted without waiting any longer, and the rest of the plan "
        "follows as soon as Slack takes it."
    )
