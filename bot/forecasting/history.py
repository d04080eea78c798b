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

from bot.core.bulk_rows import read_rows
from bot.core.models import Invoice, Payment, PaymentAllocation
from bot.forecasting.model import PaymentModel, PaymentRecord, fit, usual_lateness

INV_TABLE: Any = Invoice.__table__
INV: Any = INV_TABLE.c
ALLOC: Any = PaymentAllocation.__table__.c
PAY: Any = Payment.__table__.c


def payment_records(
    session: Session,
    as_of: date,
    timezone: str,
    customer_id: int | None = None,
    paid_only: bool = False,
) -> list[PaymentRecord]:
    """Every invoice issued on or before `as_of` that is open or paid (only paid ones with
    `paid_only`), keyed by customer id (only `customer_id`'s when it is given). Read through the
    driver (bulk_rows): the plan learns from the book each morning."""
    last_payment = (
        select(ALLOC.invoice_id, func.max(PAY.received_on))
        .join(Payment.__table__, PAY.id == ALLOC.payment_id)
        .group_by(ALLOC.invoice_id)
    )
    invoices = select(
        INV.id, INV.customer_id, INV.due_date, INV.status, INV.paid_at, INV.disputed
    ).where(INV.status.in_(("paid",) if paid_only else ("open", "paid")), INV.issue_date <= as_of)
    if customer_id is not None:
        invoices = invoices.where(INV.customer_id == customer_id)
        last_payment = last_payment.join(INV_TABLE, INV.id == ALLOC.invoice_id).where(
            INV.customer_id == customer_id
        )
    received = dict(read_rows(session, last_payment))
    zone = ZoneInfo(timezone)
    records = []
    rows = read_rows(session, invoices, shared=(2, 3))
    for invoice_id, customer, due_date, status, paid_at, disputed in rows:
        paid_on: date | None = None
        if status == "paid":
            if invoice_id in received:
                paid_on = received[invoice_id]
            elif paid_at is not None:
                paid_on = paid_at.astimezone(zone).date()
        records.append(PaymentRecord(customer, due_date, paid_on, bool(disputed)))
    return records


def payment_habit(session: Session, customer_id: int, as_of: date, timezone: str) -> str:
    """ "usually pays 9 days late (last 12 invoices)", or "no payment history yet": the customer's
    own recent payments, read alone (no need to learn the whole book for one line)."""
    return usual_lateness(
        fit(payment_records(session, as_of, timezone, customer_id), as_of), customer_id
    )


def learn(
    session: Session, as_of: date, timezone: str, open_invoices: list[PaymentRecord] | None = None
) -> PaymentModel:
    """The payment model as of `as_of`, learned from the ledger in one pass. `open_invoices`,
    when the caller has read them already (the plan has), saves reading them again."""
    if open_invoices is None:
        return fit(payment_records(session, as_of, timezone), as_of)
    return fit(payment_records(session, as_of, timezone, paid_only=True) + open_invoices, as_of)
