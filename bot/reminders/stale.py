"""Is this reminder stale? The one check made before a person's approval counts and again when the
outbox claims the reminder to send it, with the same rules both times.

A reminder is stale when its reason to exist has gone since it was planned: an invoice it covers
was paid or changed (its balance, due date or total, which the message states), is disputed, or
counts as resolved (a payment plan, a promise to pay not yet due, as ARBOT_RESOLVED_WHEN says); the
customer is paused, never automated or escalated since, or a bank payment that may be theirs waits
for a person to place it (bot/payments/in_review.py: what they owe may already be paid); the
contact can no longer be reached on the reminder's channel. Approve, Approve all and the send claim cancel a stale reminder with the
reason this module gives, instead of approving or sending it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Escalation, Event, Invoice, Reminder, ReminderInvoice
from bot.core.settings import Settings
from bot.core.vocabulary import (
    RESOLUTIONS,
    THREAD_REPLY,
    Channel,
    EscalationState,
    InvoiceStatus,
    Resolution,
)
from bot.escalations import plans
from bot.escalations.plans import is_instalment_step
from bot.payments.in_review import customers_in_review
from bot.payments.record import why_closed

# The changes to an invoice that make a message planned before them untrue, each with the reason
# the reminder is cancelled for; the first of these reasons is given when several changed.
CHANGED_SINCE = {
    "invoice.balance_changed": "superseded",  # the amounts are no longer the ledger's
    "payment.allocated": "superseded",
    # the source renumbered it or moved it to another customer
    "invoice.renumbered": "superseded",
    "invoice.moved": "superseded",
    "invoice.due_date_changed": "due_date_changed",
    "invoice.total_changed": "total_changed",
}
_FIRST_REASON = tuple(dict.fromkeys(CHANGED_SINCE.values()))
PAYMENT_IN_REVIEW = "payment_in_review"  # the plan's hold of the same name (planning/guardrails)


@dataclass(frozen=True)
class StaleRules:
    """What, besides a payment, makes a reminder stale: the settings' ARBOT_RESOLVED_WHEN."""

    resolved_when: frozenset[Resolution] = frozenset(RESOLUTIONS)
    # The business's timezone (ARBOT_TIMEZONE): a promise holds through its date there.
    timezone: str = "UTC"

    @classmethod
    def from_settings(cls, settings: Settings) -> StaleRules:
        return cls(
            resolved_when=frozenset(Resolution(r) for r in settings.resolved_when),
            timezone=settings.timezone,
        )


def why_stale(session: Session, reminder: Reminder, now: datetime, rules: StaleRules) -> str | None:
    """Why this reminder should no longer go out (its cancel reason), or None if it still should."""
    return stale_reasons(session, [reminder], now, rules).get(reminder.id)


def stale_reasons(
    session: Session, reminders: Sequence[Reminder], now: datetime, rules: StaleRules
) -> dict[int, str]:
    """`why_stale` for many reminders at once, in a few queries whatever their number: the
    reminders that should no longer go out, each with its cancel reason."""
    if not reminders:
        return {}
    ids = [r.id for r in reminders]
    invoices: dict[int, list[Invoice]] = defaultdict(list)
    for reminder_id, invoice in session.execute(
        select(ReminderInvoice.reminder_id, Invoice)
        .join(Invoice, ReminderInvoice.invoice_id == Invoice.id)
        .where(ReminderInvoice.reminder_id.in_(ids))
    ):
        invoices[reminder_id].append(invoice)
    invoice_ids = {i.id for covered in invoices.values() for i in covered}
    last_change: dict[int | None, list[tuple[datetime, str]]] = defaultdict(list)
    for invoice_id, kind, at in session.execute(  # invoice -> its latest change of each kind
        select(Event.invoice_id, Event.kind, func.max(Event.at))
        .where(Event.invoice_id.in_(invoice_ids), Event.kind.in_(CHANGED_SINCE))
        .group_by(Event.invoice_id, Event.kind)
    ):
        last_change[invoice_id].append((at, CHANGED_SINCE[kind]))
    customer_ids = {r.customer_id for r in reminders}
    customers = {
        c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
    }
    last_opened = dict(  # customer -> when its latest open escalation opened
        session.execute(
            select(Escalation.customer_id, func.max(Escalation.opened_at))
            .where(
                Escalation.customer_id.in_(customer_ids),
                Escalation.state != EscalationState.RESOLVED,
            )
            .group_by(Escalation.customer_id)
        ).all()
    )
    reviewing = customers_in_review(session, customer_ids)
    contact_ids = {r.contact_id for r in reminders if r.contact_id}
    contacts = {
        c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))
    }
    reasons = {}
    for reminder in reminders:
        reason = _reason(
            reminder,
            invoices[reminder.id],
            [change for i in invoices[reminder.id] for change in last_change.get(i.id, ())],
            customers[reminder.customer_id],  # a reminder's customer is a foreign key
            last_opened.get(reminder.customer_id),
            contacts.get(reminder.contact_id) if reminder.contact_id else None,
            now,
            rules,
            plans.instalment_owed(session, reminder.step_key)
            if plans.is_instalment_step(reminder.step_key)
            else None,
            in_review=reminder.customer_id in reviewing,
        )
        if reason:
            reasons[reminder.id] = reason
    return reasons


def _reason(
    reminder: Reminder,
    invoices: list[Invoice],
    changes: list[tuple[datetime, str]],
    customer: Customer,
    escalation_opened: datetime | None,
    contact: Contact | None,
    now: datetime,
    rules: StaleRules,
    instalment_owed: Decimal | None = None,
    in_review: bool = False,
) -> str | None:
    closed = [i for i in invoices if i.status != InvoiceStatus.OPEN or i.balance <= 0]
    if closed:  # as a payment or an import cancels it (bot/payments/record.py)
        return why_closed([i.status for i in closed])
    if any(i.disputed for i in invoices):
        return "disputed"
    today = now.astimezone(ZoneInfo(rules.timezone)).date()  # the business's day
    if Resolution.PROMISE in rules.resolved_when and any(
        i.promise_date is not None and i.promise_date >= today for i in invoices
    ):
        return "promised"
    if is_instalment_step(reminder.step_key):
        if instalment_owed is None or instalment_owed <= 0:
            return "paid"  # the instalment was covered (or its plan ended) since it was planned
    elif Resolution.PAYMENT_PLAN in rules.resolved_when and any(i.payment_plan for i in invoices):
        return "payment_plan"
    changed = {reason for at, reason in changes if at > reminder.created_at}
    if changed:  # the message states an amount or a date that is no longer the ledger's
        return min(changed, key=_FIRST_REASON.index)
    # A person's reply from an escalation's thread is no automated message: a pause, never
    # automate or the escalation itself does not hold it back (what the contact allows does).
    by_person = reminder.step_key == THREAD_REPLY
    if not by_person and customer.paused_until is not None and customer.paused_until > now:
        return "paused"
    if not by_person and customer.never_automate:
        return "paused"
    if not by_person and escalation_opened is not None and escalation_opened > reminder.created_at:
        return "escalated"
    if not by_person and in_review:  # a bank payment that may be theirs waits for a person
        return PAYMENT_IN_REVIEW
    if contact is None:
        return "opted_out"
    if reminder.channel == Channel.EMAIL and (
        not contact.email or contact.email_opted_out_at or contact.email_unusable_at
    ):
        return "opted_out"
    if reminder.channel == Channel.SMS and (
        not contact.phone
        or not contact.sms_consent
        or contact.sms_opted_out_at
        or contact.sms_unusable_at
    ):
        return "opted_out"
    return None
