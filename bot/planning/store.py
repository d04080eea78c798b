"""Running the day's plan: load, compute, and (unless it is a dry run) store it in one transaction.

A reminder is stored as `planned` (or `approved` when every step it carries is auto-approve), with
its rendered message, the invoices and steps it covers, and the playbook version that produced it.
A step is recorded once per invoice and due date under a unique constraint, and a reminder's
idempotency key is its customer and day: running the plan twice stores nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.locks import PLAN_LOCK, schema_lock
from bot.core.models import Reminder, ReminderInvoice
from bot.escalations import service
from bot.learning.versions import active_version, bundle_of, ensure_active, load_checked
from bot.payments.links import PreparedLinks, PreparingLinks, payment_link
from bot.planning import facts as plan_data
from bot.planning.facts import CustomerFacts, InvoiceFacts
from bot.planning.planner import Plan, PlanItem, PlanRules, compute_plan
from integrations.base.payments import PaymentLinks
from playbooks.render import Renderer

AUTO_APPROVER = "playbook"


@dataclass
class PlanRun:
    plan: Plan
    playbook_version: int
    reminder_ids: dict[int, int]  # customer id -> stored reminder id (empty on a dry run)


def run_plan(
    session: Session,
    rules: PlanRules,
    day: date,
    now: datetime,
    dry_run: bool,
    links: PaymentLinks | None = None,
) -> PlanRun:
    """Plan the day. Payment links are made only for a stored plan (a dry run makes none)."""
    schema_lock(session, PLAN_LOCK)  # one plan at a time (on PostgreSQL; SQLite serialises)
    version = ensure_active(session, now)
    bundle = bundle_of(version)
    customers = plan_data.load_customers(session)
    history = plan_data.load_history(session)

    def link_for(customer: CustomerFacts, invoices: list[InvoiceFacts]) -> str | None:
        return payment_link(session, None if dry_run else links, customer, invoices, now)

    plan = compute_plan(
        customers, history, bundle.playbook, rules, day, now, Renderer(bundle.templates), link_for
    )
    ids = {} if dry_run else _store(session, plan, version.id, now)
    return PlanRun(plan=plan, playbook_version=version.version, reminder_ids=ids)


def prepare_links(
    session: Session, rules: PlanRules, day: date, now: datetime, links: PaymentLinks
) -> PreparedLinks:
    """Stage one of a stored plan with processor links: work the plan out on a read-only session
    and make at the processor the links it will carry, so that no network call happens while the
    plan's write transaction is open. Nothing is written; `run_plan` then stores the plan with
    the links made here (`PreparedLinks`), and makes none itself."""
    version = active_version(session)
    bundle = bundle_of(version) if version is not None else load_checked(None)
    customers = plan_data.load_customers(session)
    history = plan_data.load_history(session)
    preparing = PreparingLinks(links)

    def link_for(customer: CustomerFacts, invoices: list[InvoiceFacts]) -> str | None:
        return payment_link(session, preparing, customer, invoices, now, store=False)

    compute_plan(
        customers, history, bundle.playbook, rules, day, now, Renderer(bundle.templates), link_for
    )
    session.rollback()
    return PreparedLinks(preparing.made, preparing.refused)


def idempotency_key(customer_id: int, day: date) -> str:
    return f"plan:{customer_id}:{day.isoformat()}"


def _store(session: Session, plan: Plan, version_id: int, now: datetime) -> dict[int, int]:
    """Bulk inserts: one statement per table, whatever the number of reminders."""
    if not plan.items:
        return {}
    rows = [_reminder_row(item, plan.day, version_id, now) for item in plan.items]
    returned = (
        session.execute(
            insert(Reminder.__table__).returning(  # type: ignore[arg-type]
                Reminder.__table__.c.id, sort_by_parameter_order=True
            ),
            rows,
        )
        .scalars()
        .all()
    )
    ids = {
        item.customer.id: reminder_id
        for item, reminder_id in zip(plan.items, returned, strict=True)
    }
    links: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    escalations: list[dict[str, object]] = []
    for item, row in zip(plan.items, rows, strict=True):
        reminder_id = ids[item.customer.id]
        numbers = [d.invoice.number for d in item.due]
        links.extend(
            {
                "reminder_id": reminder_id,
                "invoice_id": d.invoice.id,
                "step_key": d.step.key,
                "due_date": d.invoice.due_date,
            }
            for d in item.due
        )
        base = {
            "at": now,
            "actor": audit.SYSTEM,
            "customer_id": item.customer.id,
            "invoice_id": None,
            "reminder_id": reminder_id,
        }
        events.append(
            {
                **base,
                "kind": "reminder.planned",
                "payload": {
                    "step": item.step.key,
                    "action": item.action,
                    "channel": item.channel,
                    "invoices": numbers,
                    "state": row["state"],
                },
            }
        )
        if item.action == "escalate":
            escalations.append(
                {
                    "customer_id": item.customer.id,
                    "reminder_id": reminder_id,
                    "reason": item.reason or "playbook",
                    "detail": ", ".join(numbers),
                    "state": "open",
                    "owner_slack_id": item.escalate_to,
                    "opened_at": now,
                }
            )
            events.append(
                {
                    **base,
                    "kind": "escalation.opened",
                    "payload": {"reason": item.reason, "owner": item.escalate_to},
                }
            )
    session.execute(insert(ReminderInvoice.__table__), links)  # type: ignore[arg-type]
    service.open_many(session, escalations)
    audit.record_many(session, events)
    return ids


def _reminder_row(item: PlanItem, day: date, version_id: int, now: datetime) -> dict[str, object]:
    auto = item.action == "remind" and item.auto_approve
    message = item.message
    email = item.channel == "email"
    return {
        "customer_id": item.customer.id,
        "contact_id": item.contact.id if item.contact else None,
        "channel": item.channel,
        "plan_date": day,
        "step_key": item.step.key,
        "action": item.action,
        "tone": item.step.tone,
        "playbook_version_id": version_id,
        # An escalation is never sent: its step is recorded as done and the Escalation row (open)
        # holds the account for a person.
        "state": "cancelled" if item.action == "escalate" else ("approved" if auto else "planned"),
        "cancel_reason": "escalated" if item.action == "escalate" else None,
        "approved_by": AUTO_APPROVER if auto else None,
        "approved_at": now if auto else None,
        "idempotency_key": idempotency_key(item.customer.id, day),
        "subject": message.subject if message and email else None,
        "body_text": (message.text if email else message.sms) if message else None,
        "body_html": message.html if message and email else None,
        "send_after": item.send_after,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
