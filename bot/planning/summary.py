"""The plan header's facts for a day: reminders and amounts by tier (and what each tier's
*Approve all* covers), who is held back and why, the accounts handed to a person and where their
escalation is, and how many reminders stand in each state (`/ar plan`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Escalation, Invoice, Reminder, ReminderInvoice
from bot.core.money import format_money
from bot.core.vocabulary import TIERS
from bot.planning import plan_posts
from bot.planning.held import Stored, counts_of, customers_of
from integrations.base.slack import EscalationLine, PlanSummary, TierLine


def summary_for(session: Session, day: date, held: Stored | None = None) -> PlanSummary:
    """The header's counts by tier, who is held back and why (`held`, as the plan's row keeps
    it: by default the stored one), and the accounts handed to a person."""
    if held is None:
        row = plan_posts.row_of(session, day)
        held = row.held if row is not None else []
    # The few columns the counts need, not whole reminders (their texts): this is read again at
    # every click's redraw of the header, on a day of any size.
    rows = session.execute(
        select(Reminder.id, Reminder.action, Reminder.state, Customer.tier)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.plan_date == day)
    ).all()
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    links = session.execute(
        select(ReminderInvoice.reminder_id, Invoice.currency, Invoice.balance)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
        .where(Reminder.plan_date == day)
    ).all()
    # One pass over the day's reminders, then one over their invoices.
    tier_of: dict[int, str] = {}
    reminders: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    covers: dict[str, list[int]] = defaultdict(list)
    for reminder_id, action, state, tier in rows:
        tier_of[reminder_id] = tier
        if action == "remind":
            reminders[tier] += 1
            if state == "planned":
                covers[tier].append(reminder_id)
        elif action == "escalate":
            escalations[tier] += 1
    waiting = {reminder_id for ids in covers.values() for reminder_id in ids}
    asked: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for reminder_id, currency, balance in links:
        totals[tier_of[reminder_id]][currency] += balance
        if reminder_id in waiting:
            asked[tier_of[reminder_id]][currency] += balance
    lines = []
    for tier in TIERS:
        amount = ", ".join(format_money(v, k) for k, v in sorted(totals[tier].items())) or "—"
        waiting_here = tuple(sorted(covers[tier]))
        lines.append(
            TierLine(
                tier=tier,
                reminders=reminders[tier],
                escalations=escalations[tier],
                amount=amount,
                awaiting=len(waiting_here),
                covers=waiting_here,
                awaiting_amount=", ".join(
                    format_money(v, k) for k, v in sorted(asked[tier].items())
                )
                or "—",
            )
        )
    return PlanSummary(
        day=day,
        tiers=tuple(lines),
        held=tuple(counts_of(held)),
        held_customers=tuple(customers_of(held)),
        escalations=tuple(escalations_on(session, day)),
    )


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
