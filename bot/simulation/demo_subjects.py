"""Who plays the customers in `arbot demo`'s story: the first customer with an approved reminder
pays it, the last one emailed disputes it; and the moments the send worker runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Invoice, Reminder, ReminderInvoice


@dataclass(frozen=True, slots=True)
class Payer:
    customer_name: str
    invoices: list[Invoice]  # what the approved reminder covers


@dataclass(frozen=True, slots=True)
class Replier:
    customer_name: str
    reminder_id: int
    email: str | None
    invoice_number: str | None
    subject: str | None
    body_text: str | None
    message_id: str | None


def _invoices_of(session: Session, reminder_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
            .where(ReminderInvoice.reminder_id == reminder_id)
            .order_by(Invoice.id)
        )
    )


def payer(session: Session) -> Payer | None:
    reminder = session.scalars(
        select(Reminder)
        .where(Reminder.state == "approved", Reminder.action == "remind")
        .order_by(Reminder.id)
    ).first()
    if reminder is None:
        return None
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    return Payer(customer.name, _invoices_of(session, reminder.id))


def replier(session: Session) -> Replier | None:
    reminder = session.scalars(
        select(Reminder)
        .where(Reminder.state == "sent", Reminder.channel == "email")
        .order_by(Reminder.id.desc())
    ).first()
    if reminder is None:
        return None
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
    invoices = _invoices_of(session, reminder.id)
    return Replier(
        customer_name=customer.name,
        reminder_id=reminder.id,
        email=contact.email if contact else None,
        invoice_number=invoices[0].number if invoices else None,
        subject=reminder.subject,
        body_text=reminder.body_text,
        message_id=reminder.message_id,
    )


def send_moments(session: Session) -> list[datetime]:
    """When the approved reminders may go out, earliest first: the demo runs the worker at each."""
    due = session.scalars(select(Reminder.send_after).where(Reminder.state == "approved"))
    return sorted({moment for moment in due if moment is not None})
