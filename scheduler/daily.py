"""The once-a-day jobs: the morning plan and the weekly review. Each runs at most once per date,
whatever the scheduler does: the run first inserts its (job, day) row in `scheduled_runs` in a
transaction of its own, and a run whose insert fails leaves the day to the run that has it. So a
restart, a missed morning caught up later or a second replica never plans or posts twice."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.core.models import ScheduledRun
from bot.core.runtime import Runtime
from bot.learning import proposals
from bot.learning.report import SlackFiles, post_report
from bot.learning.weekly_review import PostsText, post_weekly_review
from bot.planning.flows import plan_day
from integrations.wiring import drafter_for, links_for, slack_for
from scheduler.business_days import BusinessDays

MORNING_PLAN = "morning_plan"
WEEKLY_REVIEW = "weekly_review"
OUTCOME_LENGTH = 500


log = logging.getLogger(__name__)


def claim_day(runtime: Runtime, job: str, day: date, instance: str) -> bool:
    """Insert the (job, day) row in its own transaction. False: another run already has the day."""
    try:
        with runtime.writing() as session:
            session.add(
                ScheduledRun(job=job, day=day, instance=instance, started_at=runtime.clock.now())
            )
    except IntegrityError:
        return False
    return True


def finish_day(runtime: Runtime, job: str, day: date, outcome: str) -> None:
    with runtime.writing() as session:
        session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.job == job, ScheduledRun.day == day)
            .values(finished_at=runtime.clock.now(), outcome=outcome[:OUTCOME_LENGTH])
        )


def local_now(runtime: Runtime) -> datetime:
    return runtime.clock.now().astimezone(ZoneInfo(runtime.settings.timezone))


def morning_plan(runtime: Runtime, calendar: BusinessDays, instance: str) -> str:
    """What `arbot plan` does for today, once: plan, store, and post to Slack when it is set up.

    Does nothing before ARBOT_MORNING_TIME or on a day off; after it, the first call of the day
    plans (so a service that was down at the morning time catches up when it comes back)."""
    now = local_now(runtime)
    day = now.date()
    day_off = calendar.why_not(day)
    if day_off:
        return f"no plan on {day.isoformat()}: {day_off}"
    if now.time() < runtime.settings.morning_time:
        return f"too early for the plan of {day.isoformat()}"
    if not claim_day(runtime, MORNING_PLAN, day, instance):
        return f"the plan of {day.isoformat()} was already made"
    try:
        outcome = _plan_and_post(runtime, day)
    except Exception as exc:
        finish_day(runtime, MORNING_PLAN, day, f"failed: {exc}")
        raise
    finish_day(runtime, MORNING_PLAN, day, outcome)
    return outcome


def _plan_and_post(runtime: Runtime, day: date) -> str:
    settings = runtime.settings
    drafter = drafter_for(settings)
    try:
        done = plan_day(
            runtime, day, links=links_for(settings), slack=slack_for(settings), drafter=drafter
        )
    finally:
        if drafter is not None:
            drafter.close()
    stored = len(done.run.reminder_ids)
    held = len(done.run.plan.held)
    where = f"posted to {done.posted_to}" if done.posted_to else "not posted (Slack is not set up)"
    return f"planned {stored} reminder(s) and escalation(s), {held} held; {where}"


def weekly_review(
    runtime: Runtime,
    slack: PostsText,
    channel: str,
    review_weekday: int,
    instance: str,
    files: SlackFiles | None = None,
) -> str:
    """Post the weekly review once on its day, at or after the morning time."""
    now = local_now(runtime)
    day = now.date()
    if day.weekday() != review_weekday:
        return f"no review on {day:%A}"
    if now.time() < runtime.settings.morning_time:
        return f"too early for the review of {day.isoformat()}"
    if not claim_day(runtime, WEEKLY_REVIEW, day, instance):
        return f"the review of {day.isoformat()} was already posted"
    try:
        review = post_weekly_review(runtime, slack, channel, day)
    except Exception as exc:
        finish_day(runtime, WEEKLY_REVIEW, day, f"failed: {exc}")
        raise
    outcome = (
        f"posted to {channel}: {review.reminders_sent} sent, {review.replies_received} replies, "
        f"{review.escalations_open} escalations open"
    )
    try:  # revisions the week's evidence supports, each for a person to approve or reject
        for view in proposals.weekly_proposals(runtime, day):
            slack.post_proposal(channel, view)
    except Exception:
        log.exception("weekly review of %s: proposals not posted", day)
        outcome += "; proposals not posted"
    if files is not None:  # the charts; a failure here does not undo the review posted above
        try:
            post_report(runtime, files, channel, day)
        except Exception:
            log.exception("weekly review of %s: charts not posted", day)
            outcome += "; charts not posted"
    finish_day(runtime, WEEKLY_REVIEW, day, outcome)
    return outcome
