"""Promises to pay that were not kept: once the promised date plus grace has passed with the
invoice still open, the promise is cleared and the pause lifted, so the next plan resumes the
sequence; the sweep escalates each such customer to its owner."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Customer, Invoice


def missed_promises(
    session: Session, today: date, grace_days: int, now: datetime
) -> list[tuple[int, list[str]]]:
    """Promises whose date plus grace has passed with the invoice still open: the promise is
    cleared and the pause lifted, so the next plan resumes the sequence. Returns
    (customer id, invoice numbers) for the owner to be told."""
    due = session.scalars(
        select(Invoice).where(
            Invoice.status == "open",
            Invoice.promise_date.is_not(None),
            Invoice.promise_date < today - timedelta(days=grace_days),
        )
    ).all()
    by_customer: dict[int, list[Invoice]] = {}
    for invoice in due:
        by_customer.setdefault(invoice.customer_id, []).append(invoice)
    out = []
    for customer_id, invoices in by_customer.items():
        customer = session.get(Customer, customer_id)
        assert customer is not None
        promised = max(i.promise_date for i in invoices if i.promise_date)
        for invoice in invoices:
            invoice.promise_date, invoice.updated_at = None, now
        if customer.paused_until is not None and customer.paused_until <= now + timedelta(days=1):
            customer.paused_until, customer.updated_at = None, now
        numbers = sorted(i.number for i in invoices)
        audit.record(
            session,
            now,
            "promise.missed",
            customer_id=customer_id,
            payload={"promised": promised.isoformat(), "invoices": numbers},
        )
        out.append((customer_id, numbers))
    return out
