"""The once-a-day jobs: the morning plan and the weekly review. Each runs at most once per date,
whatever the scheduler does: the run first inserts its (job, day) row in `scheduled_runs` in a
transaction of its own, and a run whose insert fails leaves the day to the run that has it. So a
restart, a missed morning caught up later or a second replica never plans or posts twice.

A morning plan whose run died making it, or that failed before it was stored, is made again by
the sweep (scheduler/plan_claim.py); the finance channel is told at its first failure.

The review waits for the day's plan to be all in Slack (bot/planning/plan_unit.py): its row is
kept as WAITING meanwhile, and the morning job and the sweep try it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.core.errors import UserError
from bot.core.models import ScheduledRun
from bot.core.runtime import Runtime
from bot.learning import proposals
from bot.learning.report import SlackFiles, post_report
from bot.learning.weekly_review import PostsText, post_weekly_review
from bot.planning import plan_posts, plan_unit
from bot.planning.flows import plan_day
from integrations.wiring import drafter_for, links_for, slack_for
from scheduler import plan_claim
from scheduler.business_days import BusinessDays

MORNING_PLAN = plan_unit.MORNING_JOB
WEEKLY_REVIEW = "weekly_review"
WAITING = "waiting for the day's plan"  # a review row's outcome while it waits
OUTCOME_LENGTH = 500
PLAN_TRIES = plan_claim.PLAN_TRIES


log = logging.getLogger(__name__)


def claim_day(runtime: Runtime, job: str, day: date, instance: str) -> bool:
    """Insert the (job, day) row in its own transaction. False: another run already has the day."""
    try:
        with runtime.writing() as session:
            session.add(
                ScheduledRun(job=job, day=day, instance=instance, started_at=runtime.clock.now())
            )
    except IntegrityError:
        return job == MORNING_PLAN and plan_claim.take(runtime, day, instance)
    return True


def plan_to_retry(runtime: Runtime, calendar: BusinessDays) -> bool:
    """Whether today's morning plan is due to be made again (plan_claim.due): its run died, or
    it failed before it was stored and has waited. The sweep then calls morning_plan."""
    now = local_now(runtime)
    if calendar.why_not(now.date()) or now.time() < runtime.settings.morning_time:
        return False
    with runtime.sessions() as session:
        run = session.get(ScheduledRun, (MORNING_PLAN, now.date()))
        return run is not None and plan_claim.due(session, run, runtime.clock.now())


def finish_day(runtime: Runtime, job: str, day: date, outcome: str) -> None:
    with runtime.writing() as session:
        session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.job == job, ScheduledRun.day == day)
            .values(finished_at=runtime.clock.now(), outcome=outcome[:OUTCOME_LENGTH])
        )


def local_now(runtime: Runtime) -> datetime:
    return runtime.clock.now().astimezone(ZoneInfo(runtime.settings.timezone))


def morning_plan(
    runtime: Runtime,
    calendar: BusinessDays,
    instance: str,
    then: Callable[[], str] | None = None,
) -> str:
    """What `arbot plan` does for today, once: plan, store, and post to Slack when it is set up;
    then `then` (the weekly review, which waits for the plan to be in Slack).

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
        return _made_or_failed(runtime, day)
    try:
        outcome = _plan_and_post(runtime, day)
    except Exception as exc:
        _plan_failed(runtime, day, exc)
        raise
    finish_day(runtime, MORNING_PLAN, day, outcome)
    if then is not None:
        try:
            log.info("after the plan of %s: %s", day, then())
        except Exception:
            log.exception("after the plan of %s: the weekly review failed", day)
    return outcome


def _made_or_failed(runtime: Runtime, day: date) -> str:
    with runtime.sessions() as session:
        run = session.get(ScheduledRun, (MORNING_PLAN, day))
        failure = plan_claim.failed(run) if run is not None else None
    if failure is None:
        return f"the plan of {day.isoformat()} was already made"
    if failure.next_try_at is None:
        return f"the plan of {day.isoformat()} failed (try {failure.tries} of {PLAN_TRIES})"
    return (
        f"the plan of {day.isoformat()} failed (try {failure.tries} of {PLAN_TRIES}); "
        f"tried again from {failure.next_try_at.isoformat()}"
    )


def _plan_failed(runtime: Runtime, day: date, exc: Exception) -> None:
    """Record the failure. One before the plan was stored counts a try for the sweep to make
    again (scheduler/plan_claim.py); the finance channel is told at the first."""
    with runtime.sessions() as session:
        stored = plan_claim.plan_stored(session, day)
        run = session.get(ScheduledRun, (MORNING_PLAN, day))
        before = plan_claim.failed(run) if run is not None else None
    if stored:  # Slack refused part of it: the sweep posts what is missing
        finish_day(runtime, MORNING_PLAN, day, f"failed: {exc}")
        return
    error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    tries = before.tries + 1 if before is not None else 1
    finish_day(runtime, MORNING_PLAN, day, plan_claim.failed_outcome(tries, error))
    if tries == 1:
        _tell_plan_failed(runtime, day, error)


def _tell_plan_failed(runtime: Runtime, day: date, error: str) -> None:
    channel = runtime.settings.finance_channel
    slack = slack_for(runtime.settings)
    if slack is None or not channel:
        return
    zone = ZoneInfo(runtime.settings.timezone)
    next_try = runtime.clock.now() + plan_claim.retry_wait(1)
    text = (
        f"The morning plan of {day.isoformat()} failed before it was stored: {error[:300]}\n"
        f"It is tried again by itself from {next_try.astimezone(zone):%H:%M} ({PLAN_TRIES} tries "
        "in all, each waiting twice as long as the one before); no reminder of today's is "
        "planned until then. Check what the error names (the database, the active playbook "
        "with `arbot playbook check`, the ledger); `arbot plan` makes today's plan by hand "
        "once it is fixed."
    )
    try:
        slack.post_text(channel, text)
    except Exception:
        log.exception("the failure of the plan of %s was not told in Slack", day)


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


def _waits_for_plan(
    runtime: Runtime, day: date, instance: str, calendar: BusinessDays | None
) -> plan_unit.Unfinished | str | None:
    """Take the day's review for posting: its (job, day) row is made the first time it is due,
    and kept as WAITING while today's plan is not all in Slack (with `calendar`, a business
    day's plan not made yet counts), for at most plan_unit.PLAN_WAIT from that first time or
    from when the plan began going out. Returns what to say instead of posting (a str), else
    the plan's gap to mention (None: it is complete); this run has the day then."""
    now = runtime.clock.now()
    with runtime.sessions() as session:
        run = session.get(ScheduledRun, (WEEKLY_REVIEW, day))
        if run is not None and run.outcome != WAITING:
            return f"the review of {day.isoformat()} was already posted"
        gap = plan_unit.unfinished(session, day, now)
        if (
            gap is None
            and calendar is not None
            and not calendar.why_not(day)
            and session.get(ScheduledRun, (MORNING_PLAN, day)) is None
            and plan_posts.row_of(session, day) is None
        ):
            gap = plan_unit.Unfinished(day, "not made yet", 0, None, now)
    if run is None:
        if not claim_day(runtime, WEEKLY_REVIEW, day, instance):
            return f"the review of {day.isoformat()} was already posted"
        first = now
    else:
        first = run.started_at
    if gap is not None and now - min(first, gap.since) < plan_unit.PLAN_WAIT:
        _mark(runtime, day, None if run is None else WAITING, WAITING, instance)
        return f"the review of {day.isoformat()} waits for today's plan ({gap.why})"
    if run is not None and not _mark(runtime, day, WAITING, None, instance):
        return f"the review of {day.isoformat()} was already posted"
    return gap


def _mark(runtime: Runtime, day: date, was: str | None, outcome: str | None, instance: str) -> bool:
    """Move the review's row from outcome `was` to `outcome` (None: being posted); False when
    another run changed it first."""
    with runtime.writing() as session:
        moved = session.execute(
            update(ScheduledRun)
            .where(
                ScheduledRun.job == WEEKLY_REVIEW,
                ScheduledRun.day == day,
                ScheduledRun.finished_at.is_(None),
                ScheduledRun.outcome.is_(None) if was is None else ScheduledRun.outcome == was,
            )
            .values(outcome=outcome, instance=instance)
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def weekly_review(
    runtime: Runtime,
    slack: PostsText,
    channel: str,
    review_weekday: int,
    instance: str,
    files: SlackFiles | None = None,
    calendar: BusinessDays | None = None,
) -> str:
    """Post the weekly review once on its day, at or after the morning time, and after the
    day's plan is all in Slack (with `calendar`, a business day's plan not made yet is waited
    for too). The morning job and the sweep call this again, so a review that waited goes out
    once the plan is complete, or past plan_unit.PLAN_WAIT saying that the plan is not."""
    now = local_now(runtime)
    day = now.date()
    if day.weekday() != review_weekday:
        return f"no review on {day:%A}"
    if now.time() < runtime.settings.morning_time:
        return f"too early for the review of {day.isoformat()}"
    gap = _waits_for_plan(runtime, day, instance, calendar)
    if isinstance(gap, str):
        return gap
    try:
        note = plan_unit.still_missing_line(gap) if gap is not None else None
        review = post_weekly_review(runtime, slack, channel, day, note=note)
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
