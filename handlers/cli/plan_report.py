"""How the day's plan reads: DESIGN's JSON document, and tables for a terminal."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from rich.console import Group
from rich.table import Table

from bot.core.money import decimal_str, format_money
from bot.core.vocabulary import TIERS
from bot.planning.forecast import ForecastDay
from bot.planning.planner import PlanItem
from bot.planning.store import PlanRun


def _item_json(
    item: PlanItem, reminder_id: int | None, attach_by_default: bool = False
) -> dict[str, Any]:
    return {
        "id": reminder_id,
        "customer": item.customer.external_id,
        "customer_name": item.customer.name,
        "tier": item.customer.tier,
        "channel": item.channel,
        "step": item.step.key,
        "tone": item.step.tone,
        "action": item.action,
        "invoices": [d.invoice.number for d in item.due],
        # the invoices whose PDF copies its email carries
        "copies": [d.invoice.number for d in item.due]
        if item.carries_copies(attach_by_default)
        else [],
        "amounts": _amounts_json(item),
        "send_after": item.send_after.isoformat() if item.send_after else None,
        "contact": item.contact.email or item.contact.phone if item.contact else None,
        "auto_approve": item.auto_approve,
        "escalate_to": item.escalate_to,
        "reason": item.reason,
        "control": item.control,
    }


def _amounts_json(item: PlanItem) -> dict[str, str]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for due in item.due:
        totals[due.invoice.currency] += due.invoice.balance
    return {code: decimal_str(amount, code) for code, amount in totals.items()}


def plan_json(run: PlanRun) -> dict[str, Any]:
    plan = run.plan
    return {
        "date": plan.day.isoformat(),
        "playbook_version": run.playbook_version,
        "reminders": [
            _item_json(i, run.reminder_ids.get(i.customer.id), run.attach_by_default)
            for i in plan.items
        ],
        "held": [
            {
                "customer": h.customer.external_id,
                "invoices": h.invoices,
                "reason": h.reason,
                "detail": h.detail,
            }
            for h in plan.held
        ],
        "observed": [_item_json(i, None, run.attach_by_default) for i in plan.observed],
    }


def plan_summary(run: PlanRun, dry_run: bool) -> Table:
    plan = run.plan
    title = f"Plan for {plan.day.isoformat()} (playbook v{run.playbook_version})"
    if dry_run:
        title += ", dry run: nothing stored"
    table = Table(title=title, title_justify="left")
    for column in ("Tier", "Reminders", "Escalations", "Amount"):
        table.add_column(column, justify="left" if column == "Tier" else "right")
    for tier in TIERS:
        items = [i for i in plan.items if i.customer.tier == tier]
        reminders = sum(1 for i in items if i.action == "remind")
        escalations = len(items) - reminders
        table.add_row(tier, str(reminders), str(escalations), _amount_text(items) or "—")
    return table


def _amount_text(items: list[PlanItem]) -> str:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for item in items:
        for due in item.due:
            totals[due.invoice.currency] += due.invoice.balance
    return ", ".join(format_money(amount, code) for code, amount in sorted(totals.items()))


def plan_tables(run: PlanRun, dry_run: bool) -> Group:
    plan = run.plan
    parts: list[Any] = [plan_summary(run, dry_run)]
    items = Table(title="Today's reminders and escalations", title_justify="left")
    for column in ("Customer", "Action", "Step", "To", "Invoices", "Amount", "Send after (UTC)"):
        items.add_column(column)
    for item in plan.items:
        items.add_row(
            f"{item.customer.name} ({item.customer.external_id})",
            "escalate"
            if item.action == "escalate"
            else f"{item.channel}" + (" · auto" if item.auto_approve else ""),
            item.step.key,
            (item.escalate_to or "finance channel")
            if item.action == "escalate"
            else (item.contact.email or item.contact.phone or "")
            if item.contact
            else "",
            ", ".join(f"{d.invoice.number} ({d.days_past_due:+d}d)" for d in item.due),
            _amount_text([item]),
            item.send_after.strftime("%a %Y-%m-%d %H:%M") if item.send_after else "—",
        )
    parts.append(items)
    if plan.held:
        reasons = Counter(h.reason for h in plan.held)
        held = Table(title=f"Held back ({len(plan.held)})", title_justify="left")
        held.add_column("Reason")
        held.add_column("Customers", justify="right")
        held.add_column("For example")
        for reason, count in reasons.most_common():
            example = next(h for h in plan.held if h.reason == reason)
            held.add_row(
                reason,
                str(count),
                f"{example.customer.name}: {', '.join(example.invoices[:3])}"
                + (f" ({example.detail})" if example.detail else ""),
            )
        parts.append(held)
    control = sum(1 for i in plan.observed if i.control)
    if len(plan.observed) > control:
        parts.append(
            f"Observe only (outside the pilot scope, not offered for approval): "
            f"{len(plan.observed) - control} customers would be contacted."
        )
    if control:
        parts.append(
            f"Control group (observed only, ARBOT_CONTROL_SHARE): {control} customers would "
            f"be contacted."
        )
    return Group(*parts)


def forecast_table(days: list[ForecastDay]) -> Table:
    table = Table(
        title=f"Forecast for the next {len(days)} days if nobody pays", title_justify="left"
    )
    for column in ("Day", "Emails", "SMS", "Escalations", "Held"):
        table.add_column(column, justify="left" if column == "Day" else "right")
    for day in days:
        table.add_row(
            day.day.strftime("%a %Y-%m-%d"),
            str(day.emails),
            str(day.sms),
            str(day.escalations),
            str(day.held),
        )
    table.add_row(
        "Total",
        str(sum(d.emails for d in days)),
        str(sum(d.sms for d in days)),
        str(sum(d.escalations for d in days)),
        "",
        style="bold",
    )
    return table
