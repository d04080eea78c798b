"""The periodic checks that make sure nothing waits in silence: escalations not yet in Slack are
posted (and histories Slack refused), promises past their date (plus grace) resume the sequence
and tell the owner, the parts of today's plan and the redraws Slack refused are posted again with
backoff, and escalations nobody claimed within the configured business days are raised again.

Today's plan is posted first and as one unit: while it is not all in Slack, what else goes to the
finance channel waits for a later sweep, up to plan_unit.PLAN_WAIT (bot/planning/plan_unit.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core import audit
from bot.core.models import Customer, Escalation
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.escalations import notes as followups
from bot.escalations import plans, posting, thread_notes
from bot.escalations import service as escalations
from bot.escalations.notes import SlackOut
from bot.escalations.promises import missed_promises
from bot.learning import guardrails, trust_notices
from bot.payments import links as payment_links
from bot.payments import reviews as review_posting
from bot.payments import unmatched_notices
from bot.planning import plan_unit
from bot.planning import posting as plan_posting
from integrations.base.mrkdwn import Mrkdwn, mention, mrkdwn
from integrations.base.payments import PaymentLinks
from integrations.base.slack import GuardrailPort

log = logging.getLogger(__name__)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class SweepReport:
    posted: list[int] = field(default_factory=list)
    missed_promises: list[int] = field(default_factory=list)  # customer ids
    missed_instalments: list[int] = field(default_factory=list)  # customer ids
    raised: list[int] = field(default_factory=list)
    reviews_posted: list[int] = field(default_factory=list)
    unmatched_posted: list[int] = field(default_factory=list)  # inbound message ids
    plan_cards_posted: int = 0  # cards of today's plan Slack did not take before
    redrawn: int = 0  # messages drawn again after Slack refused a redraw
    histories_posted: list[int] = field(default_factory=list)  # escalation ids
    notes_posted: int = 0  # reasons added to escalations in Slack, told in their threads
    stripe_unmatched_posted: list[str] = field(default_factory=list)  # Stripe event ids


def business_time(start: datetime, end: datetime, timezone: str, days: list[str]) -> timedelta:
    """How much of [start, end) fell on business days in the business's timezone."""
    zone = ZoneInfo(timezone)
    working = {DAY_NAMES.index(d) for d in days if d in DAY_NAMES}
    total = timedelta(0)
    cursor = start.astimezone(zone)
    stop = end.astimezone(zone)
    while cursor < stop:
        midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time(), zone)
        step_end = min(midnight, stop)
        if cursor.weekday() in working:
            total += step_end - cursor
        cursor = step_end
    return total


def _missed_instalments(runtime: Runtime, report: SweepReport) -> list[tuple[int, Mrkdwn]]:
    """Payment plans checked: instalments newly paid marked, and for each plan whose instalment
    is past its date plus ARBOT_INSTALMENT_GRACE_DAYS, the plan's thread reopened (or the
    customer escalated, when it has no thread). Returns the threads to tell, with the owner
    mentioned."""
    settings = runtime.settings
    now, today = runtime.clock.now(), runtime.today()
    routes = dict(settings.escalation_routes)
    told: list[tuple[int, Mrkdwn]] = []
    with runtime.writing() as session:
        for miss in plans.check_plans(session, today, settings.instalment_grace_days, now):
            customer = session.get(Customer, miss.customer_id)
            assert customer is not None
            owed = format_money(miss.owed, miss.currency)
            detail = f"instalment {miss.seq} due {miss.due_on.isoformat()} missed: {owed} owed"
            report.missed_instalments.append(miss.customer_id)
            thread = session.get(Escalation, miss.escalation_id) if miss.escalation_id else None
            if (
                thread is not None
                and thread.state == "resolved"
                and thread.slack_thread_ts
                and escalations.open_for(session, miss.customer_id) is None
            ):
                escalations.reopen(session, thread.id, audit.SYSTEM, now)
                target: Escalation = thread
            else:
                target, new = escalations.open_or_add(
                    session,
                    miss.customer_id,
                    "missed_instalment",
                    now,
                    detail=detail,
                    owner=escalations.owner_for(customer, routes),
                )
                if new:  # posted by post_new, its owner mentioned there
                    continue
                if target.slack_thread_ts:  # owed a note saying so, its owner mentioned
                    continue
            owner = target.owner_slack_id or escalations.owner_for(customer, routes)
            told.append(
                (
                    target.id,
                    mrkdwn(
                        ":rotating_light: ",
                        mention(owner) if owner else "Finance team",
                        f": instalment {miss.seq} of the payment plan, due "
                        f"{miss.due_on.isoformat()}, was missed ({owed} still owed). The plan "
                        "has ended and this thread is open again.",
                    ),
                )
            )
    return told


def sweep(
    runtime: Runtime, slack: SlackOut | None, *, links: PaymentLinks | None = None
) -> SweepReport:
    """Missed promises escalated, stale payment links retired (with `links`), and whatever Slack
    did not get posted again: escalations, bank-payment reviews, unmatched messages, unclaimed
    threads raised. Every Slack and Stripe call happens with no write transaction open."""
    settings = runtime.settings
    now, today = runtime.clock.now(), runtime.today()
    routes = dict(settings.escalation_routes)
    report = SweepReport()
    with runtime.writing() as session:  # an escalation in Slack is owed a note (thread_notes)
        for customer_id, numbers in missed_promises(
            session, today, settings.promise_grace_days, now
        ):
            customer = session.get(Customer, customer_id)
            assert customer is not None
            escalations.open_or_add(
                session,
                customer_id,
                "missed_promise",
                now,
                detail=f"still open after the promised date: {', '.join(numbers)}",
                owner=escalations.owner_for(customer, routes),
            )
            report.missed_promises.append(customer_id)
    reopened = _missed_instalments(runtime, report)
    for escalation_id, text in reopened:
        if slack is None:
            break
        try:
            with runtime.sessions() as session:
                posting.after_decision(
                    session, slack, escalation_id, text, today, settings.timezone
                )
        except Exception:  # reopened all the same; the unclaimed sweep raises it again
            log.exception("missed-instalment note for escalation %s not posted", escalation_id)
    if slack is not None:  # reasons added to escalations in Slack, told in their threads
        try:
            report.notes_posted = thread_notes.post_owed(runtime, slack)
        except Exception:
            log.exception("notes owed to escalation threads not posted")
    if links is not None:
        try:
            payment_links.retire_stale(runtime, links)
        except Exception:
            log.exception("stale payment links not retired")
    channel = settings.escalation_channel or settings.finance_channel
    if slack is None or not channel:
        return report
    if settings.finance_channel:  # the plan's parts Slack refused, once their backoff passed
        report.plan_cards_posted = plan_posting.post_missing(runtime, slack)
    with runtime.sessions() as session:  # the plan is one unit: the rest waits (bounded)
        gap = plan_unit.unfinished(session, today, runtime.clock.now())
    plan_first = gap is not None and not gap.overdue(runtime.clock.now())
    if plan_first:
        log.info("posts to the finance channel wait for today's plan: %s", gap and gap.why)
    if not (plan_first and channel == settings.finance_channel):
        report.posted = posting.post_new(runtime, slack, channel)
    report.histories_posted = posting.retry_histories(runtime, slack)
    report.redrawn = plan_posting.retry_redraws(runtime, slack)
    if settings.finance_channel and not plan_first:
        try:  # bank payments to place that Slack did not get when they were imported
            report.reviews_posted = review_posting.post_open(
                runtime, slack, settings.finance_channel
            )
        except Exception:
            log.exception("payment reviews not posted")
    if settings.finance_channel and not plan_first and isinstance(slack, GuardrailPort):
        try:  # guardrail proposals Slack did not take after the morning plan
            guardrails.post_waiting(runtime, slack, settings.finance_channel)
        except Exception:
            log.exception("guardrail proposals not posted")
    if settings.finance_channel and not plan_first:
        try:  # trust taken back that Slack did not take when it happened
            trust_notices.post_waiting(runtime, slack, settings.finance_channel)
        except Exception:
            log.exception("trust withdrawals not told in Slack")
    if settings.finance_channel and not plan_first:
        try:  # Stripe events naming no payment of arbot's, which Slack did not get then
            report.stripe_unmatched_posted = unmatched_notices.post_waiting(
                runtime, slack, settings.finance_channel
            )
        except Exception:
            log.exception("unmatched Stripe events not told in Slack")
    try:  # messages that matched no customer, which Slack did not get when they came in
        if not plan_first:
            report.unmatched_posted = followups.post_unmatched(
                runtime, slack, settings.finance_channel
            )
    except Exception:
        log.exception("unmatched messages not posted")
    limit = timedelta(days=settings.unclaimed_after_days)
    with runtime.sessions() as session:
        waiting = [
            e.id
            for e in escalations.unclaimed(session, now, timedelta(0))
            if business_time(e.raised_at or e.opened_at, now, settings.timezone, settings.send_days)
            >= limit
        ]
    if waiting:
        report.raised = posting.raise_unclaimed(runtime, slack, waiting)
    return report
