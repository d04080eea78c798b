"""Is this reminder stale? The one check made before a person's approval counts and again when the
outbox claims the reminder to send it, with the same rules both times.

A reminder is stale when its reason to exist has gone since it was planned: an invoice it covers
was paid or changed, is disputed, or counts as resolved (a payment plan, a promise to pay not yet
due, as ARBOT_RESOLVED_WHEN says); the customer is paused, never automated or escalated since; the
contact can no longer be reached on the reminder's channel. Approve, Approve all and the send claim
cancel a stale reminder with the reason this module gives, instead of approving or sending it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Escalation, Event, Invoice, Reminder, ReminderInvoice
from bot.core.settings import Settings
from bot.core.vocabulary import (
    RESOLUTIONS,
    Channel,
    EscalationState,
    InvoiceStatus,
    Resolution,
)


@dataclass(frozen=True)
class StaleRules:
    """What, besides a payment, makes a reminder stale: the settings' ARBOT_RESOLVED_WHEN."""

    resolved_when: frozenset[Resolution] = frozenset(RESOLUTIONS)

    @classmethod
    def from_settings(cls, settings: Settings) -> StaleRules:
        return cls(resolved_when=frozenset(Resolution(r) for r in settings.resolved_when))


def why_stale(session: Session, reminder: Reminder, now: datetime, rules: StaleRules) -> str | None:
    """Why this reminder should no longer go out (its cancel reason), or None if it still should."""
    invoices = session.scalars(
        select(Invoice)
        .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
        .where(ReminderInvoice.reminder_id == reminder.id)
    ).all()
    if any(i.status != InvoiceStatus.OPEN or i.balance <= 0 for i in invoices):
        return "paid"
    if any(i.disputed for i in invoices):
        return "disputed"
    if Resolution.PROMISE in rules.resolved_when and any(
        i.promise_date is not None and i.promise_date >= now.date() for i in invoices
    ):
        return "promised"
    if Resolution.PAYMENT_PLAN in rules.resolved_when and any(i.payment_plan for i in invoices):
        return "payment_plan"
    changed = session.scalar(
        select(Event.id)
        .where(
            Event.invoice_id.in_([i.id for i in invoices]),
            Event.kind.in_(("invoice.balance_changed", "payment.allocated")),
            Event.at > reminder.created_at,
        )
        .limit(1)
    )
    if changed is not None:
        return "superseded"  # the amounts in the message are no longer the ledger's
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None  # a reminder's customer is a foreign key
    if customer.paused_until is not None and customer.paused_until > now:
        return "paused"
    if customer.never_automate:
        return "paused"
    open_escalation = session.scalar(
        select(Escalation.id)
        .where(
            Escalation.customer_id == customer.id,
            Escalation.state != EscalationState.RESOLVED,
            Escalation.opened_at > reminder.created_at,
        )
        .limit(1)
    )
    if open_escalation is not None:
        return "escalated"
    contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
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
