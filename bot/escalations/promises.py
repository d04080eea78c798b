"""Promises to pay that were not kept: once the promised date plus grace has passed with the
invoice still open, the promise is cleared and the pause it set lifted, so the next plan resumes
the sequence; the sweep escalates each such customer to its owner. A pause a person set
(`/ar pause`) that ends later than the promise's stays until its own end."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Customer, Event, Invoice


def missed_promises(
    session: Session, today: date, grace_days: int, now: datetime
) -> list[tuple[int, list[str]]]:
    """Promises whose date plus grace has passed with the invoice still open: the promise is
    cleared and the pause it set lifted, so the next plan resumes the sequence; a pause that ends
    at another time was set by a person and is kept. Returns (customer id, invoice numbers) for
    the owner to be told."""
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
        paused_until = customer.paused_until
        lifted = kept = None  # the pause the promise set, lifted; one a person set, kept
        if paused_until is not None and paused_until in promise_pauses(session, customer_id):
            lifted = paused_until.isoformat()
            customer.paused_until, customer.updated_at = None, now
        elif paused_until is not None and paused_until > now:
            kept = paused_until.isoformat()
        numbers = sorted(i.number for i in invoices)
        audit.record(
            session,
            now,
            "promise.missed",
            customer_id=customer_id,
            payload={
                "promised": promised.isoformat(),
                "invoices": numbers,
                "pause_lifted": lifted,
                "pause_kept_until": kept,
            },
        )
        out.append((customer_id, numbers))
    return out


def promise_pauses(session: Session, customer_id: int) -> list[datetime]:
    """The ends of the pauses the customer's promises set, as each promise.recorded event says
    (`resume_after`, bot/escalations/service.promise): a pause ending at one of them is a
    promise's, any other a person's."""
    payloads: Iterable[dict[str, object] | None] = session.scalars(
        select(Event.payload).where(
            Event.customer_id == customer_id, Event.kind == "promise.recorded"
        )
    )
    ends = []
    for payload in payloads:
        resume_after = (payload or {}).get("resume_after")
        if isinstance(resume_after, str):
            ends.append(datetime.fromisoformat(resume_after))
    return ends
