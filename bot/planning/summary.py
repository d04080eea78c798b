"""The plan header's facts for a day: reminders and amounts by tier (and what each tier's
*Approve all* covers), who is held back and why, the accounts handed to a person and where their
escalation is, and how many reminders stand in each state (`/ar plan`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot.core.dbtypes import Amount
from bot.core.models import Customer, Escalation, Invoice, Reminder, ReminderInvoice
from bot.core.money import format_money
from bot.core.vocabulary import TIERS
from bot.escalations.plans import instalment_asks, is_instalment_step
from bot.learning.trust import header_lines
from bot.ledger.sync_failures import stale_sources
from bot.planning import plan_posts
from bot.planning.held import Stored, counts_of, customers_of
from bot.reminders.shown import versions_of
from integrations.base.slack import (
    MOST_APPROVED_TOGETHER,
    EscalationLine,
    PlanSummary,
    TierLine,
)


def summary_for(session: Session, day: date, held: Stored | None = None) -> PlanSummary:
    """The header's counts by tier, who is held back and why (`held`, as the plan's row keeps
    it: by default the stored one), and the accounts handed to a person."""
    if held is None:
        row = plan_posts.row_of(session, day)
        held = row.held if row is not None else []
    # Counts and sums by the database, in two aggregate queries, and the ids still waiting (what
    # each tier's Approve all covers): this is read again at every click's redraw of the header,
    # on a day of any size, so no row of the day comes back whole (but the messages of the few
    # each Approve all approves, for their versions).
    waiting_now = and_(Reminder.action == "remind", Reminder.state == "planned")
    reminders: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    for tier_name, action, count in session.execute(
        select(Customer.tier, Reminder.action, func.count(Reminder.id))
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.plan_date == day)
        .group_by(Customer.tier, Reminder.action)
    ):
        if action == "remind":
            reminders[tier_name] += count
        elif action == "escalate":
            escalations[tier_name] += count
    covers: dict[str, list[int]] = defaultdict(list)
    instalments: dict[int, tuple[str, str]] = {}  # waiting instalment reminders: tier, step
    for reminder_id, tier_name, step_key in session.execute(
        select(Reminder.id, Customer.tier, Reminder.step_key)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.plan_date == day, waiting_now)
    ):
        covers[tier_name].append(reminder_id)
        if is_instalment_step(step_key):
            instalments[reminder_id] = (tier_name, step_key)
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    asked: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for tier_name, action, state, currency, balance in session.execute(
        select(
            Customer.tier,
            Reminder.action,
            Reminder.state,
            Invoice.currency,
            func.sum(Invoice.balance, type_=Amount()),
        )
        .select_from(ReminderInvoice)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.plan_date == day)
        .group_by(Customer.tier, Reminder.action, Reminder.state, Invoice.currency)
    ):
        totals[tier_name][currency] += balance
        if action == "remind" and state == "planned":
            asked[tier_name][currency] += balance
    if instalments:
        _ask_for_instalments(session, instalments, asked)
    lines = []
    for tier in TIERS:
        amount = ", ".join(format_money(v, k) for k, v in sorted(totals[tier].items())) or "—"
        waiting_here = sorted(covers[tier])
        approved_together = tuple(waiting_here[:MOST_APPROVED_TOGETHER])
        versions = versions_of(session, approved_together)
        lines.append(
            TierLine(
                tier=tier,
                reminders=reminders[tier],
                escalations=escalations[tier],
                amount=amount,
                awaiting=len(waiting_here),
                covers=approved_together,
                versions=tuple(versions[reminder_id] for reminder_id in approved_together),
                awaiting_amount=", ".join(
                    format_money(v, k) for k, v in sorted(asked[tier].items())
                )
                or "—",
            )
        )
    # The steps approved automatically because they earned trust, and trust lost in the last week.
    trusted, untrusted = header_lines(
        session, datetime.combine(day - timedelta(days=7), time.min, UTC)
    )
    return PlanSummary(
        day=day,
        trusted=tuple(trusted),
        untrusted=tuple(untrusted),
        tiers=tuple(lines),
        held=tuple(counts_of(held)),
        held_customers=tuple(customers_of(held)),
        escalations=tuple(escalations_on(session, day)),
        stale=tuple(stale_sources(session)),
    )


def _ask_for_instalments(
    session: Session,
    instalments: dict[int, tuple[str, str]],
    asked: dict[str, dict[str, Decimal]],
) -> None:
    """An instalment's reminder asks for the instalment, not its invoices' balances: `asked`
    (summed by tier and currency over the invoices of waiting reminders) corrected for these."""
    asks = instalment_asks(session, [step for _, step in instalments.values()])
    for reminder_id, currency, balance in session.execute(
        select(ReminderInvoice.reminder_id, Invoice.currency, Invoice.balance)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .where(ReminderInvoice.reminder_id.in_(sorted(instalments)))
    ):
        tier_name, step_key = instalments[reminder_id]
        if step_key in asks:
            asked[tier_name][currency] -= balance
    for tier_name, step_key in instalments.values():
        if step_key in asks:
            amount, currency = asks[step_key]
            asked[tier_name][currency] += amount


def states_for(session: Session, day: date) -> dict[str, int]:
    """How many of the day's reminders (escalations aside) are in each state."""
    return dict(
        session.execute(
            select(Reminder.state, func.count())
            .where(Reminder.plan_date == day, Reminder.action == "remind")
            .group_by(Reminder.state)
        ).all()
    )


def escalations_on(session: Session, day: date) -> list[EscalationLine]:
    """The accounts `day`'s plan handed to a person, and where each escalation is in Slack."""
    rows = session.execute(
        select(
            Customer.name,
            Escalation.reason,
            Escalation.owner_slack_id,
            Escalation.slack_channel,
            Escalation.slack_thread_ts,
        )
        .join(Reminder, Reminder.id == Escalation.reminder_id)
        .join(Customer, Customer.id == Escalation.customer_id)
        .where(Reminder.plan_date == day, Reminder.action == "escalate")
        .order_by(Customer.name, Escalation.id)
    ).all()
    return [EscalationLine(*row) for row in rows]
