"""Running the day's plan: load, compute, and (unless it is a dry run) store it in one transaction.

A reminder is stored as `planned` (or `approved` when every step it carries is auto-approve), with
its rendered message, the invoices and steps it covers, and the playbook version that produced it.
A step is recorded once per invoice and due date under a unique constraint, and a reminder's
idempotency key is its customer and day: running the plan twice stores nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from bot import audit, plan_data
from bot.models import Escalation, Reminder, ReminderInvoice
from bot.planner import Plan, PlanItem, PlanRules, compute_plan
from bot.playbook_versions import bundle_of, ensure_active
from playbooks.render import Renderer

PLAN_LOCK_KEY = 0x6172626F74_02  # "arbot" + 2: one plan at a time on PostgreSQL
AUTO_APPROVER = "playbook"


@dataclass
class PlanRun:
    plan: Plan
    playbook_version: int
    reminder_ids: dict[int, int]  # customer id -> stored reminder id (empty on a dry run)


def run_plan(
    session: Session, rules: PlanRules, day: date, now: datetime, dry_run: bool
) -> PlanRun:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK_KEY})
    version = ensure_active(session, now)
    bundle = bundle_of(version)
    customers = plan_data.load_customers(session)
    history = plan_data.load_history(session)
    plan = compute_plan(
        customers, history, bundle.playbook, rules, day, now, Renderer(bundle.templates)
    )
    ids = {} if dry_run else _store(session, plan, version.id, now)
    return PlanRun(plan=plan, playbook_version=version.version, reminder_ids=ids)


def idempotency_key(customer_id: int, day: date) -> str:
    return f"plan:{customer_id}:{day.isoformat()}"


def _store(session: Session, plan: Plan, version_id: int, now: datetime) -> dict[int, int]:
    ids: dict[int, int] = {}
    links: list[dict[str, object]] = []
    for item in plan.items:
        reminder = _reminder_row(item, plan.day, version_id, now)
        session.add(reminder)
        session.flush()
        ids[item.customer.id] = reminder.id
        links.extend(
            {
                "reminder_id": reminder.id,
                "invoice_id": d.invoice.id,
                "step_key": d.step.key,
                "due_date": d.invoice.due_date,
            }
            for d in item.due
        )
        payload = {
            "step": item.step.key,
            "action": item.action,
            "channel": item.channel,
            "invoices": [d.invoice.number for d in item.due],
            "state": reminder.state,
        }
        audit.record(
            session,
            now,
            "reminder.planned",
            customer_id=item.customer.id,
            reminder_id=reminder.id,
            payload=payload,
        )
        if item.action == "escalate":
            session.add(
                Escalation(
                    customer_id=item.customer.id,
                    reminder_id=reminder.id,
                    reason=item.reason or "playbook",
                    state="open",
                    owner_slack_id=item.escalate_to,
                    opened_at=now,
                    detail=", ".join(d.invoice.number for d in item.due),
                )
            )
            audit.record(
                session,
                now,
                "escalation.opened",
                customer_id=item.customer.id,
                reminder_id=reminder.id,
                payload={"reason": item.reason, "owner": item.escalate_to},
            )
    if links:
        session.execute(insert(ReminderInvoice.__table__), links)  # type: ignore[arg-type]
    return ids


def _reminder_row(item: PlanItem, day: date, version_id: int, now: datetime) -> Reminder:
    auto = item.action == "remind" and item.auto_approve
    message = item.message
    return Reminder(
        customer_id=item.customer.id,
        contact_id=item.contact.id if item.contact else None,
        channel=item.channel,
        plan_date=day,
        step_key=item.step.key,
        action=item.action,
        tone=item.step.tone,
        playbook_version_id=version_id,
        state="approved" if auto else "planned",
        approved_by=AUTO_APPROVER if auto else None,
        approved_at=now if auto else None,
        idempotency_key=idempotency_key(item.customer.id, day),
        subject=message.subject if message and item.channel == "email" else None,
        body_text=(message.text if item.channel == "email" else message.sms) if message else None,
        body_html=message.html if message and item.channel == "email" else None,
        send_after=item.send_after,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
