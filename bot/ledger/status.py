"""One customer's account at a glance: open invoices, aging, contacts, history, escalations."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import (
    Contact,
    ControlAssignment,
    Customer,
    Escalation,
    Event,
    Invoice,
    Reminder,
)
from bot.core.money import decimal_str
from bot.core.vocabulary import TOUCHED, WAITING
from bot.escalations import plans
from bot.ledger.aging import aging_report
from bot.ledger.customers import find_customer
from bot.planning import control

RECENT_EVENTS = 50


def account_status(session: Session, query: str, as_of: date) -> dict[str, Any]:
    """The document behind `arbot status CUSTOMER --json`, for the customer `query` names."""
    return status_of(session, find_customer(session, query), as_of)


def status_of(session: Session, customer: Customer, as_of: date) -> dict[str, Any]:
    """One customer's account as `arbot status --json` and `/ar status` show it."""
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.customer_id == customer.id, Invoice.status == "open", Invoice.balance > 0)
        .order_by(Invoice.due_date, Invoice.number)
    ).all()
    contacts = session.scalars(
        select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)
    ).all()
    events = session.scalars(
        select(Event)
        .where(Event.customer_id == customer.id)
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(RECENT_EVENTS)
    ).all()
    escalations = session.scalars(
        select(Escalation)
        .where(Escalation.customer_id == customer.id)
        .order_by(Escalation.opened_at.desc())
    ).all()
    reminders = session.scalars(
        select(Reminder)
        .where(Reminder.customer_id == customer.id)
        .order_by(Reminder.plan_date.desc(), Reminder.id.desc())
        .limit(20)
    ).all()
    touches = [
        {
            "at": (r.sent_at or r.updated_at).isoformat(),
            "channel": r.channel,
            "step": r.step_key,
            "state": r.state,
        }
        for r in reminders
        if r.action == "remind" and r.state in TOUCHED
    ]
    waiting = [r for r in reminders if r.state in WAITING]
    upcoming = (
        f"{waiting[0].step_key} by {waiting[0].channel}, {waiting[0].state}"
        + (
            f", sends after {waiting[0].send_after.isoformat(timespec='minutes')}"
            if waiting[0].send_after
            else ""
        )
        if waiting
        else None
    )
    return {
        "as_of": as_of.isoformat(),
        "customer": _customer(customer, contacts),
        "touches": touches,
        "next": upcoming,
        "invoices": [_invoice(invoice, as_of) for invoice in invoices],
        "aging": aging_report(session, as_of, customer.id).as_json(),
        "events": [_event(event) for event in events],
        "escalations": [_escalation(escalation) for escalation in escalations],
        "payment_plan": _plan(plans.progress(session, customer.id)),
        "control": _control(control.assignment_of(session, customer.id), control.ended(session)),
    }


def _control(
    assignment: ControlAssignment | None, ended: control.Ended | None
) -> dict[str, Any] | None:
    """The customer's group in the randomized holdout, when one ever ran (and when it ended)."""
    if assignment is None:
        return None
    since = assignment.assigned_at.date().isoformat()
    share = f"{assignment.share.normalize():f}"
    summary = (
        f"in the control group: observed only since {since} (ARBOT_CONTROL_SHARE {share})"
        if assignment.grp == control.CONTROL
        else f"followed up, not in the control group (drawn on {since}, share {share})"
    )
    if ended is not None:
        end = ended.at.date().isoformat()
        summary = (
            f"was in the control group (observed only) from {since} until the holdout ended on "
            f"{end}; followed up since"
            if assignment.grp == control.CONTROL
            else f"followed up (drawn on {since}, share {share}; the holdout ended on {end})"
        )
    return {
        "group": assignment.grp,
        "since": assignment.assigned_at.isoformat(),
        "share": share,
        "summary": summary,
        "ended": ended.at.isoformat() if ended is not None else None,
    }


def _plan(progress: plans.Progress | None) -> dict[str, Any] | None:
    """The latest payment plan and each instalment: paid, missed or to come."""
    if progress is None:
        return None
    code = progress.currency
    return {
        "state": progress.state,
        "currency": code,
        "total": decimal_str(progress.total, code),
        "paid": decimal_str(progress.paid, code),
        "summary": progress.summary(),
        "instalments": [
            {
                "seq": s.seq,
                "due_on": s.due_on.isoformat(),
                "amount": decimal_str(s.amount, code),
                "owed": decimal_str(s.owed, code),
                "state": s.state,
            }
            for s in progress.steps
        ],
    }


def _customer(customer: Customer, contacts: list[Contact] | Any) -> dict[str, Any]:
    return {
        "id": customer.external_id,
        "name": customer.name,
        "source": customer.source,
        "tier": customer.tier,
        "owner_slack_id": customer.owner_slack_id,
        "timezone": customer.timezone,
        "never_automate": customer.never_automate,
        "paused_until": customer.paused_until.isoformat() if customer.paused_until else None,
        "tags": list(customer.tags or []),
        "language": customer.language,  # BCP 47 tag; null: English
        "contacts": [
            {
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "role": c.role,
                "sms_consent": c.sms_consent,
                "email_opted_out": c.email_opted_out_at is not None,
                "sms_opted_out": c.sms_opted_out_at is not None,
                "language": c.language,  # null: the customer's
            }
            for c in contacts
        ],
    }


def _invoice(invoice: Invoice, as_of: date) -> dict[str, Any]:
    return {
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "days_past_due": (as_of - invoice.due_date).days,
        "currency": invoice.currency,
        "amount": decimal_str(invoice.total, invoice.currency),
        "balance": decimal_str(invoice.balance, invoice.currency),
        "status": invoice.status,
        "disputed": invoice.disputed,
        "promise_date": invoice.promise_date.isoformat() if invoice.promise_date else None,
        "payment_link": invoice.payment_link,
    }


def _event(event: Event) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "payload": event.payload,
    }


def _escalation(escalation: Escalation) -> dict[str, Any]:
    return {
        "reason": escalation.reason,
        "state": escalation.state,
        "owner_slack_id": escalation.owner_slack_id,
        "opened_at": escalation.opened_at.isoformat(),
        "resolved_at": escalation.resolved_at.isoformat() if escalation.resolved_at else None,
    }
