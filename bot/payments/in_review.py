"""The customers a bank payment waiting for a person may belong to: those an open payment review
offers it to (any of its candidates), and those its payer's name names, as the matcher reads it
(bot/payments/reconcile.py; a review with no candidate, such as one whose reference names a
settled invoice, still holds the payer). Until a person places the payment, what they owe may
already be paid, so none of them is chased meanwhile: the daily plan holds them
(bot/planning/guardrails.py) and a reminder of theirs approved before the payment came is not
sent (bot/reminders/stale.py)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Payment, PaymentReview
from bot.payments.reconcile import normalise_name


def customers_in_review(session: Session, among: Collection[int] | None = None) -> set[int]:
    """The customers a bank payment under review may belong to; with `among`, only those of these
    customers (whose names alone are then read)."""
    customers: set[int] = set()
    payers: set[str] = set()
    for candidates, payer in session.execute(
        select(PaymentReview.candidates, Payment.payer)
        .join(Payment, Payment.id == PaymentReview.payment_id)
        .where(PaymentReview.state == "open")
    ):
        for candidate in candidates or ():
            if isinstance(candidate, dict) and candidate.get("customer_id") is not None:
                customers.add(int(candidate["customer_id"]))
        if payer and (name := normalise_name(payer)):
            payers.add(name)
    if among is not None:
        customers.intersection_update(among)
    if payers and (among is None or among):
        names = select(Customer.id, Customer.name)
        if among is not None:
            names = names.where(Customer.id.in_(list(among)))
        for customer_id, name in session.execute(names):
            if normalise_name(name) in payers:
                customers.add(customer_id)
    return customers
