"""The ledger's payment history as the forecast learns it: for every open or paid invoice, its
customer, due date and the day it was paid.

The day an invoice was paid is the latest payment allocated to it (a payment recorded from the
ledger sync, a Stripe event, or a bank file imported with `arbot import-payments` whose reference
names the invoice), else the day arbot saw it paid (`paid_at`, in the business's timezone). Void
and written-off invoices are left out: they say nothing of when a customer pays."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Invoice, Payment, PaymentAllocation
from bot.forecasting.model import PaymentModel, PaymentRecord, fit, usual_lateness

INV: Any = Invoice.__table__.c
ALLOC: Any = PaymentAllocation.__table__.c
PAY: Any = Payment.__table__.c


def payment_records(
    session: Session, as_of: date, timezone: str, customer_id: int | None = None
) -> list[PaymentRecord]:
    """Every invoice issued on or before `as_of` that is open or paid, keyed by customer id (only
    `customer_id`'s when it is given)."""
    last_payment = (
        select(ALLOC.invoice_id, func.max(PAY.received_on).label("received_on"))
        .join(Payment.__table__, PAY.id == ALLOC.payment_id)
        .group_by(ALLOC.invoice_id)
        .subquery()
    )
    query = (
        select(INV.customer_id, INV.due_date, INV.status, INV.paid_at, last_payment.c.received_on)
        .outerjoin(last_payment, last_payment.c.invoice_id == INV.id)
        .where(INV.status.in_(("open", "paid")), INV.issue_date <= as_of)
    )
    if customer_id is not None:
        query = query.where(INV.customer_id == customer_id)
    zone = ZoneInfo(timezone)
    records = []
    for customer_id, due_date, status, paid_at, received_on in session.execute(query):
        paid_on: date | None = None
        if status == "paid":
            if received_on is not None:
                paid_on = received_on
            elif paid_at is not None:
                paid_on = paid_at.astimezone(zone).date()
        records.append(PaymentRecord(customer_id, due_date, paid_on))
    return records


def payment_habit(session: Session, customer_id: int, as_of: date, timezone: str) -> str:
    """ "usually pays 9 days late (last 12 invoices)", or "no payment history yet": the customer's
    own recent payments, read alone (no need to learn the whole book for one line)."""
    return usual_lateness(
        fit(payment_records(session, as_of, timezone, customer_id), as_of), customer_id
    )


def learn(session: Session, as_of: date, timezone: str) -> PaymentModel:
    """The payment model as of `as_of`, learned from the ledger (one query, one pass)."""
    return fit(payment_records(session, as_of, timezone), as_of)
