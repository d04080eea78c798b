"""Every scheduled job of `arbot serve`, declared in one place.

| job           | when                                            | where              |
|---------------|-------------------------------------------------|--------------------|
| send          | every minute, when sending is set up            | every replica      |
| morning_plan  | ARBOT_MORNING_TIME on business days (local)     | the leader         |
| sync          | every ARBOT_SYNC_EVERY_MINUTES, when connected  | the leader         |
| sweep         | every 5 minutes (escalations, missed promises,  | the leader         |
|               | a morning plan whose run died or that failed,   |                    |
|               | what of the plan Slack refused)                 |                    |
| weekly_review | ARBOT_WEEKLY_REVIEW_DAY at the morning time,    | the leader         |
|               | once the day's plan is all in Slack (the        |                    |
|               | morning job and the sweep try it again)         |                    |

Each job also runs once as soon as its replica starts running it (the send worker at start, the
others when the replica becomes the leader): a missed morning is caught up, and each job decides
from the database whether there is anything to do. The send worker runs everywhere: replicas
share the outbox, and what keeps two from sending the same reminder is its conditional move to
`sending` (still `approved`, unchanged since the claim), not the claim's SKIP LOCKED, which lasts
only the claim's own transaction.

ARBOT_SEND_EVERY_SECONDS (default 60) sets the send worker's interval; tests shorten it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.core.settings import WEEKDAYS, Settings
from bot.escalations.notes import SlackOut
from bot.escalations.sweeps import sweep
from bot.ledger import crm_notes
from bot.ledger.sources import sync_all
from bot.reminders.flows import send_due
from bot.workspaces.registry import Workspaces
from integrations.errors import SourceError
from integrations.slack_chat import SlackChat
from integrations.wiring import (
    copy_fetchers_for,
    crm_openers,
    ledger_source_opener,
    links_for,
    senders_for,
    slack_for,
)
from scheduler.business_days import business_days
from scheduler.daily import morning_plan, plan_to_retry, weekly_review

log = logging.getLogger(__name__)
SEND_EVERY_SECONDS = 60
SWEEP_EVERY_MINUTES = 5
_DECLARED: set[tuple[str, str]] = set()  # workspaces whose jobs were declared (warn once)


@dataclass(frozen=True)
class Job:
    name: str
    trigger: BaseTrigger
    run: Callable[[], str]  # returns what it did, in a few words, for logs and /healthz
    leader_only: bool = True
    version: str = ""  # a job declared again with another version is restarted


def sending_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.from_email and settings.secret_key)


def send_every_seconds() -> float:
    text = os.environ.get("ARBOT_SEND_EVERY_SECONDS", "")
    try:
        return float(text) if text else SEND_EVERY_SECONDS
    except ValueError:
        raise UserError(f"ARBOT_SEND_EVERY_SECONDS: {text!r} is not a number of seconds") from None


def weekday_number(text: str) -> int:
    day = text.strip().lower()[:3]
    if day not in WEEKDAYS:
        raise UserError(f"ARBOT_WEEKLY_REVIEW_DAY: {text!r} is not a day such as mon or fri")
    return WEEKDAYS.index(day)


def declare_jobs(
    runtime: Runtime, slack: SlackOut | None, instance: str, warn: bool = True
) -> list[Job]:
    """The jobs this configuration runs. Bad settings fail here, before anything starts."""
    settings = runtime.settings
    zone = ZoneInfo(settings.timezone)
    morning = settings.morning_time
    at_morning = {"hour": morning.hour, "minute": morning.minute, "second": morning.second}
    calendar = business_days(settings)
    review_day = weekday_number(settings.weekly_review_day)
    jobs = []
    if sending_configured(settings):
        jobs.append(
            Job(
                "send",
                IntervalTrigger(seconds=send_every_seconds()),
                lambda: send_tick(runtime),
                leader_only=False,
            )
        )
    elif warn:
        where = f"workspace {settings.workspace}: " if settings.workspace else ""
        log.warning(
            "%snot sending: set SMTP_HOST, ARBOT_FROM_EMAIL and ARBOT_SECRET_KEY to send", where
        )
    channel = settings.finance_channel
    review: Callable[[], str] | None = None
    if isinstance(slack, SlackChat) and channel:
        chat, finance = slack, channel

        def review() -> str:  # waits for the day's plan to be all in Slack (bounded)
            return weekly_review(
                runtime, chat, finance, review_day, instance, files=chat.client, calendar=calendar
            )

    jobs.append(
        Job(
            "morning_plan",
            CronTrigger(day_of_week=",".join(settings.send_days), timezone=zone, **at_morning),
            lambda: morning_plan(runtime, calendar, instance, then=review),
        )
    )

    def plan_again() -> str | None:  # a plan whose run died or failed: scheduler/plan_claim.py
        if not plan_to_retry(runtime, calendar):
            return None
        return morning_plan(runtime, calendar, instance, then=review)

    jobs.append(
        Job(
            "sync",
            IntervalTrigger(minutes=settings.sync_every_minutes),
            lambda: sync_connected(runtime, slack),
        )
    )
    jobs.append(
        Job(
            "sweep",
            IntervalTrigger(minutes=SWEEP_EVERY_MINUTES),
            lambda: sweep_tick(runtime, slack, then=review, plan=plan_again),
        )
    )
    if review is not None:
        jobs.append(
            Job(
                "weekly_review",
                CronTrigger(day_of_week=WEEKDAYS[review_day], timezone=zone, **at_morning),
                review,
            )
        )
    return jobs


def send_tick(runtime: Runtime) -> str:
    """What `arbot send` does: send what is due, then tell Slack what changed."""
    send_due(
        runtime,
        senders_for(runtime.settings, runtime=runtime),
        slack_for(runtime.settings),
        copy_fetchers_for(runtime.settings),
    )
    return "outbox flushed"


def sweep_tick(
    runtime: Runtime,
    slack: SlackOut | None,
    then: Callable[[], str] | None = None,
    plan: Callable[[], str | None] | None = None,
) -> str:
    """`plan` (today's plan, when a run left it to make again), the sweep, then `then` (the
    weekly review, when it waited for today's plan)."""
    planned = None
    if plan is not None:
        try:
            planned = plan()
        except Exception:
            log.exception("the sweep's morning plan failed")
            planned = "the morning plan failed"
    report = sweep(runtime, slack, links=links_for(runtime.settings))
    notes_written, notes_failed = crm_notes.flush(runtime, crm_openers(runtime.settings), slack)
    done = (
        f"{len(report.posted)} escalation(s) posted, {len(report.missed_promises)} missed "
        f"promise(s), {len(report.raised)} unclaimed raised"
    )
    if report.plan_cards_posted or report.redrawn or report.histories_posted:
        done += (
            f"; Slack caught up: {report.plan_cards_posted} plan card(s), {report.redrawn} "
            f"redraw(s), {len(report.histories_posted)} history(ies)"
        )
    if notes_written or notes_failed:
        done += f"; {notes_written} CRM note(s) written, {len(notes_failed)} given up"
    if planned is not None:
        done += f"; morning plan: {planned}"
    if then is not None:
        try:
            review = then()
        except Exception:
            log.exception("the sweep's weekly review failed")
            review = "the weekly review failed"
        if review.startswith("posted"):
            done += f"; weekly review {review}"
    return done


def sync_connected(runtime: Runtime, slack: SlackOut | None) -> str:
    """`arbot sync` for every connected source; nothing (and no network) when none is."""
    settings = runtime.settings
    done = sync_all(
        runtime,
        slack,
        open_source=ledger_source_opener(settings),
        crms=crm_openers(settings),
        links=links_for(settings),
    )
    if not done.connected:
        return "no source connected"
    if done.failed and not done.results:
        raise SourceError("; ".join(done.failed))
    parts = [
        f"{r.source}: {r.summary.invoices_created} new, {r.summary.invoices_updated} changed"
        for r in done.results
    ]
    return "; ".join(parts + done.failed + done.busy)


def workspace_jobs(workspaces: Workspaces, instance: str) -> list[Job]:
    """The same jobs for every installed workspace, on its own runtime and Slack token, named
    `job@T0123ABC`. A workspace whose settings are bad is logged and left out, never the rest."""
    jobs: list[Job] = []
    for workspace in workspaces.installed():
        team = workspace.team_id
        try:
            runtime = workspaces.runtime(team)
            slack = slack_for(runtime.settings)
            first = (team, workspace.stamp) not in _DECLARED
            declared = declare_jobs(runtime, slack, instance, warn=first)
            _DECLARED.add((team, workspace.stamp))
        except Exception as exc:  # its own jobs stop, never the other workspaces'
            log.error("workspace %s: its jobs cannot run: %s: %s", team, type(exc).__name__, exc)
            continue
        jobs.extend(
            replace(job, name=f"{job.name}@{team}", version=workspace.stamp) for job in declared
        )
    return jobs
