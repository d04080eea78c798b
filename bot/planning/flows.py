"""Plan the day: the one story `arbot plan` and the scheduler's morning job both tell.

The plan is worked out and stored in one write transaction; only after that commit are the drafts
polished (an LLM call) and the plan posted to the finance channel (Slack calls). Processor payment
links are made before that transaction, from a first reading of the plan (store.prepare_links)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.planning import control
from bot.planning.guardrails import NO_CONTACT
from bot.planning.planner import PlanRules
from bot.planning.store import PlanRun, prepare_links, run_plan
from integrations.base.outbound import Drafter
from integrations.base.payments import PaymentLinks
from integrations.base.slack import EscalationPort, GuardrailPort, SlackPort

# What posts a stored plan (Slack, escalations, drafting, guardrails) is imported where it is
# used: a dry run loads none of it.

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DayPlan:
    run: PlanRun
    posted_to: str | None  # the finance channel, or None when the plan was not posted


def plan_day(
    runtime: Runtime,
    day: date,
    *,
    links: PaymentLinks | None,
    slack: SlackPort | None,
    drafter: Drafter | None = None,
    dry_run: bool = False,
) -> DayPlan:
    """Work out `day`'s reminders and escalations and store them; then, unless this is a dry run,
    polish the drafts (with a drafter) and post the plan to ARBOT_FINANCE_CHANNEL (with Slack)."""
    rules = PlanRules.from_settings(runtime.settings)
    now = runtime.clock.now()
    if rules.control_share > 0:  # the salt is kept even by a dry run, so both draw alike
        with runtime.writing() as session:
            # after an end, a stored plan starts the new holdout; a dry run keeps what is stored
            control.ensure_holdout(session, rules.control_share, now, start_again=not dry_run)
    if links is not None and not dry_run:  # made at the processor before the write transaction
        with runtime.sessions() as session:
            links = prepare_links(session, rules, day, now, links)
    with runtime.writing() as session:
        run = run_plan(session, rules, day, now, dry_run=dry_run, links=links)
        if dry_run:
            session.rollback()  # a dry run stores nothing, not even a first playbook version
    if dry_run:
        return DayPlan(run, None)
    from bot.learning import guardrails

    _propose_guardrails(runtime, run)
    posted_to = post_day(runtime, day, run, slack=slack, drafter=drafter)
    if posted_to and isinstance(slack, GuardrailPort):  # after the plan: it goes out as one unit
        guardrails.post_waiting(runtime, slack, posted_to)
    if posted_to and slack is not None:  # trust this plan took back, told after its commit
        _tell_trust_withdrawn(runtime, slack, posted_to)
    return DayPlan(run, posted_to)


def _propose_guardrails(runtime: Runtime, run: PlanRun) -> None:
    """Guardrails the recurring errors support (bot/learning/guardrails.py), with the customers
    this plan held back for want of any contact; a failure here never stops the plan."""
    from bot.learning import guardrails

    no_contact = [h.customer.id for h in run.plan.held if h.reason == NO_CONTACT]
    try:
        guardrails.propose_today(runtime, no_contact)
    except Exception:
        log.exception("guardrails not proposed; the next plan tries again")


def _tell_trust_withdrawn(runtime: Runtime, slack: SlackPort, channel: str) -> None:
    from bot.learning import trust_notices

    try:
        trust_notices.post_waiting(runtime, slack, channel)
    except Exception:
        log.exception("trust withdrawals not told in Slack; the sweep tries again")


def post_day(
    runtime: Runtime,
    day: date,
    run: PlanRun,
    *,
    slack: SlackPort | None,
    drafter: Drafter | None = None,
) -> str | None:
    """Post the stored plan to the finance channel when Slack is set up; None when it is not."""
    from bot.planning import held, posting
    from bot.reminders.drafting import polish
    from integrations.errors import SlackFailed

    channel = runtime.settings.finance_channel
    if slack is None or not channel:
        return None
    if drafter is not None:
        polish(runtime, list(run.reminder_ids.values()), drafter)
    post_escalations(runtime, slack)
    try:
        posting.post_plan(runtime, slack, channel, day, held.to_store(run.plan.held))
    except SlackFailed as exc:
        raise UserError(why_not_posted(channel, exc.error)) from None
    return channel


def post_escalations(runtime: Runtime, slack: SlackPort) -> None:
    """The day's new escalations, before the plan, so its header can say where each one is (the
    sweep posts any Slack refuses now)."""
    if not isinstance(slack, EscalationPort):
        return
    from bot.escalations import posting as escalation_posting

    try:
        escalation_posting.post_new(runtime, slack, plan_first=False)
    except Exception:
        log.exception("escalations not posted before the plan; the sweep posts them")


NOT_A_MEMBER = ("not_in_channel", "channel_not_found", "is_archived")
RETRY = "`arbot serve` posts the rest within minutes, or run `arbot plan` again"


def why_not_posted(channel: str, error: str) -> str:
    """One line for a plan that is stored but not (all) in Slack: what happened and what to do."""
    if error in NOT_A_MEMBER:
        return (
            f"the plan is stored, but arbot is not in the Slack channel {channel} ({error}): "
            f"type `/invite @arbot` in {channel} (or fix ARBOT_FINANCE_CHANNEL); then {RETRY}"
        )
    if error.startswith("unreachable") or error in ("internal_error", "fatal_error"):
        return (
            f"the plan is stored, but Slack could not be reached ({error}); "
            f"{RETRY} once Slack answers"
        )
    return (
        f"the plan is stored, but Slack refused it ({error}); check SLACK_BOT_TOKEN and that "
        f"the bot is in {channel}; then {RETRY}"
    )
