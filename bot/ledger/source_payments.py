"""The payments a ledger source reports itself, kept for the account's history: recorded with their
allocations, changing no balance (the ledger's balances already include them)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Invoice, Payment, PaymentAllocation
from integrations.base.ledger import LedgerBatch

if TYPE_CHECKING:
    from bot.ledger.upsert import ImportSummary


def record_source_payments(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    """The source's own payments, kept for the account's history. The ledger's balances already
    include them, so they are recorded with their allocations but change no balance."""
    known = set(
        session.scalars(
            select(Payment.external_id).where(
                Payment.source == batch.source,
                Payment.external_id.in_([p.external_id for p in batch.payments]),
            )
        )
    )
    numbers = {
        (customer_id, number): invoice_id
        for invoice_id, customer_id, number in session.execute(
            select(Invoice.id, Invoice.customer_id, Invoice.number).where(
                Invoice.customer_id.in_(set(customer_ids.values()))
            )
        )
    }
    for record in batch.payments:
        if record.external_id in known:
            continue
        customer_id = customer_ids.get(record.customer_external_id or "")
        payment = Payment(
            source=batch.source,
            external_id=record.external_id,
            customer_id=customer_id,
            received_on=record.received_on,
            amount=record.amount,
            currency=record.currency,
            reference=record.reference,
            created_at=now,
        )
        session.add(payment)
        session.flush()
        for number, amount in record.allocations:
            invoice_id = numbers.get((customer_id or 0, number))
            if invoice_id is not None and amount > 0:
                session.add(
                    PaymentAllocation(payment_id=payment.id, invoice_id=invoice_id, amount=amount)
                )
        audit.record(
            session,
            now,
            "payment.received",
            customer_id=customer_id,
            payload={
                "source": batch.source,
                "external_id": record.external_id,
                "amount": str(record.amount),
                "currency": record.currency,
                "invoices": [n for n, _ in record.allocations],
            },
        )
        summary.payments_recorded += 1
