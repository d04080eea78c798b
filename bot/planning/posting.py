"""The plan in the finance channel: cards built from stored reminders, posted in as few messages as
Block Kit allows, and the same messages updated whenever a reminder changes state."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Customer, Escalation, Event, Invoice, Reminder, ReminderInvoice
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.core.vocabulary import TIERS
from integrations.base.slack import (
    CardInvoice,
    PlanSummary,
    PostedGroup,
    ReminderCard,
    SlackPort,
    TierLine,
)


def cards_for(session: Session, reminders: list[Reminder], timezone: str) -> list[ReminderCard]:
    ids = [r.id for r in reminders]
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.id.in_({r.customer_id for r in reminders}))
        )
    }
    contacts = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.id.in_({r.contact_id for r in reminders if r.contact_id}))
        )
    }
    invoices: dict[int, list[tuple[Invoice, date]]] = defaultdict(list)
    for reminder_id, invoice in session.execute(
        select(ReminderInvoice.reminder_id, Invoice)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .where(ReminderInvoice.reminder_id.in_(ids))
        .order_by(Invoice.due_date, Invoice.number)
    ):
        invoices[reminder_id].append((invoice, invoice.due_date))
    owners = dict(
        session.execute(
            select(Escalation.reminder_id, Escalation.owner_slack_id).where(
                Escalation.reminder_id.in_(ids)
            )
        ).all()
    )
    # Who skipped, and why: one query for the whole group, not one per card.
    skips = {
        reminder_id: (actor, (payload or {}).get("reason") or None)
        for reminder_id, actor, payload in session.execute(
            select(Event.reminder_id, Event.actor, Event.payload).where(
                Event.reminder_id.in_([r.id for r in reminders if r.state == "skipped"]),
                Event.kind == "reminder.skipped",
            )
        )
    }
    zone = ZoneInfo(timezone)
    cards = []
    for r in reminders:
        customer = customers[r.customer_id]
        contact = contacts.get(r.contact_id) if r.contact_id else None
        lines = invoices.get(r.id, [])
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for invoice, _ in lines:
            totals[invoice.currency] += invoice.balance
        acted_at = r.approved_at or (r.updated_at if r.state not in ("planned",) else None)
        cards.append(
            ReminderCard(
                reminder_id=r.id,
                customer_name=customer.name,
                customer_id=customer.external_id,
                tier=customer.tier,
                action=r.action,
                state=r.state,
                step=r.step_key,
                channel=r.channel,
                contact=(contact.email if r.channel == "email" else contact.phone)
                if contact
                else owners.get(r.id)  # who the escalation went to (owner, or the tier's route)
                if r.action == "escalate"
                else None,
                invoices=tuple(
                    CardInvoice(
                        i.number, format_money(i.balance, i.currency), (r.plan_date - due).days
                    )
                    for i, due in lines
                ),
                total=", ".join(format_money(v, k) for k, v in sorted(totals.items())) or "—",
                subject=r.subject,
                preview=r.body_text,
                send_after=r.send_after.astimezone(zone).strftime("%a %H:%M %Z")
                if r.send_after
                else None,
                acted_by=r.approved_by
                if r.state in ("approved", "sending", "sent")
                else skips.get(r.id, (None, None))[0],
                acted_at=acted_at.astimezone(zone).strftime("%H:%M %Z") if acted_at else None,
                note=r.cancel_reason or r.error or skips.get(r.id, (None, None))[1],
            )
        )
    return cards


def summary_for(
    session: Session, day: date, held: list[tuple[str, int]] | None = None
) -> PlanSummary:
    rows = session.execute(
        select(Reminder, Customer.tier)
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
    tier_of = {r.id: tier for r, tier in rows}
    waiting = {r.id for r, _ in rows if r.action == "remind" and r.state == "planned"}
    asked: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for reminder_id, currency, balance in links:
        totals[tier_of[reminder_id]][currency] += balance
        if reminder_id in waiting:
            asked[tier_of[reminder_id]][currency] += balance
    lines = []
    for tier in TIERS:
        mine = [r for r, t in rows if t == tier]
        amount = ", ".join(format_money(v, k) for k, v in sorted(totals[tier].items())) or "—"
        covers = tuple(sorted(r.id for r in mine if r.id in waiting))
        lines.append(
            TierLine(
                tier=tier,
                reminders=sum(1 for r in mine if r.action == "remind"),
                escalations=sum(1 for r in mine if r.action == "escalate"),
                amount=amount,
                awaiting=len(covers),
                covers=covers,
                awaiting_amount=", ".join(
                    format_money(v, k) for k, v in sorted(asked[tier].items())
                )
                or "—",
            )
        )
    return PlanSummary(day=day, tiers=tuple(lines), held=tuple(held or ()))


def states_for(session: Session, day: date) -> dict[str, int]:
    """How many of the day's reminders (escalations aside) are in each state."""
    return dict(
        session.execute(
            select(Reminder.state, func.count())
            .where(Reminder.plan_date == day, Reminder.action == "remind")
            .group_by(Reminder.state)
        ).all()
    )


def post_plan(
    runtime: Runtime,
    slack: SlackPort,
    channel: str,
    day: date,
    held: list[tuple[str, int]] | None = None,
) -> int:
    """Post what of the day's stored plan is not posted yet; returns how many cards were posted.

    Slack is called outside any database transaction (a slow Slack must not hold SQLite's write
    lock while people click), and each message's ts is saved as soon as it is posted, so a
    failure half-way leaves nothing to post twice.
    """
    # Reminders by tier, then escalations: "Approve all <tier>" then redraws only that tier's
    # messages, which keeps Web API calls at about 0.2 per reminder on a busy day.
    tier_rank = case({tier: rank for rank, tier in enumerate(TIERS)}, value=Customer.tier)
    with runtime.sessions() as session:
        reminders = session.scalars(
            select(Reminder)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.plan_date == day, Reminder.slack_ts.is_(None))
            .order_by(Reminder.action.desc(), tier_rank, Reminder.id)
        ).all()
        if not reminders:
            return 0
        summary = summary_for(session, day, held)
        cards = cards_for(session, list(reminders), runtime.settings.timezone)

    def save(posted_channel: str, group: PostedGroup) -> None:
        with runtime.writing() as write:
            write.execute(
                update(Reminder)
                .where(Reminder.id.in_(group.reminder_ids))
                .values(slack_channel=posted_channel, slack_ts=group.ts)
            )

    posted = slack.post_plan(channel, summary, cards, save)
    with runtime.writing() as session:
        audit.record(
            session,
            runtime.clock.now(),
            "plan.posted",
            payload={
                "day": day.isoformat(),
                "channel": posted.channel,
                "header_ts": posted.header_ts,
                "reminders": len(cards),
                "messages": len(posted.groups) + 1,
            },
        )
    return len(cards)


def refresh(session: Session, slack: SlackPort, reminder_ids: list[int], timezone: str) -> None:
    """Re-draw the Slack messages holding these reminders (and the plan header's counts)."""
    touched = session.execute(
        select(Reminder.slack_channel, Reminder.slack_ts, Reminder.plan_date)
        .where(Reminder.id.in_(reminder_ids), Reminder.slack_ts.is_not(None))
        .distinct()
    ).all()
    days = set()
    for channel, ts, day in touched:
        assert channel is not None and ts is not None
        group = session.scalars(
            select(Reminder)
            .where(Reminder.slack_channel == channel, Reminder.slack_ts == ts)
            .order_by(Reminder.action.desc(), Reminder.id)
        ).all()
        slack.update_cards(channel, ts, cards_for(session, list(group), timezone))
        days.add(day)
    for day in days:
        header = _header_of(session, day)
        if header:
            slack.update_plan_header(header[0], header[1], summary_for(session, day))


def _header_of(session: Session, day: date) -> tuple[str, str] | None:
    for payload in session.scalars(
        select(Event.payload).where(Event.kind == "plan.posted").order_by(Event.id.desc())
    ):
        if payload.get("day") == day.isoformat():
            return str(payload["channel"]), str(payload["header_ts"])
    return None


def held_counts(held_reasons: list[str]) -> list[tuple[str, int]]:
    return Counter(held_reasons).most_common()
