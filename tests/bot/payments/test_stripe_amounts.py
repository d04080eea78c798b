"""Amounts as Stripe's API counts them (docs.stripe.com/currencies): both directions, and a paid
event recorded at what the customer really paid."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.models import Invoice, Payment
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.payments.stripe_amounts import UnchargeableAmount, from_stripe_minor, to_stripe_minor
from bot.payments.stripe_events import apply_event
from integrations.base.payments import StripeEventIn
from integrations.csv_ledger import read_ledger_csv
from tests.support import stripe_requests as sr
from tests.support.ledger_files import row, write

# (amount in the currency's units, currency, the integer Stripe reads as exactly that amount)
STRIPE_AMOUNTS = [
    ("1250.05", "USD", 125005),
    ("150000", "JPY", 150000),
    ("10000", "ISK", 1000000),  # zero-decimal in ISO, counted in hundredths by Stripe
    ("250000", "HUF", 25000000),  # two-decimal at Stripe for charges
    ("120.500", "KWD", 120500),
]
# Stripe charges fillér, though the ledger (Babel's digits) keeps HUF whole.
BOTH_WAYS = [*STRIPE_AMOUNTS, ("10.45", "HUF", 1045)]


@pytest.mark.parametrize(("amount", "currency", "minor"), BOTH_WAYS)
def test_an_amount_goes_to_stripe_as_the_integer_stripe_reads_as_that_amount(
    amount: str, currency: str, minor: int
) -> None:
    assert to_stripe_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(("amount", "currency", "minor"), BOTH_WAYS)
def test_a_stripe_amount_comes_back_as_the_same_decimal_amount(
    amount: str, currency: str, minor: int
) -> None:
    assert from_stripe_minor(minor, currency.lower()) == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency", "step"),
    [
        ("5.124", "KWD", "0.01 KWD"),  # Stripe needs a three-decimal amount's last digit 0
        ("10000.50", "ISK", "1 ISK"),  # no fractions of a króna at Stripe
        ("1.5", "JPY", "1 JPY"),
        ("0.001", "USD", "0.01 USD"),
    ],
)
def test_an_amount_stripe_cannot_charge_exactly_is_refused_not_rounded(
    amount: str, currency: str, step: str
) -> None:
    with pytest.raises(UnchargeableAmount, match=f"steps of {step}, so {amount} {currency}"):
        to_stripe_minor(Decimal(amount), currency)


@pytest.mark.parametrize(("amount", "currency", "minor"), STRIPE_AMOUNTS)
def test_a_paid_checkout_records_what_the_customer_paid(
    runtime: Runtime, tmp_path: Path, amount: str, currency: str, minor: int
) -> None:
    """10,000 ISK paid arrives as amount_total=1000000: recorded as 10,000 ISK, which pays the
    invoice, not as 1,000,000 ISK with the rest left unapplied."""
    with runtime.writing() as session:
        ledger = read_ledger_csv(
            write(tmp_path / "l.csv", [row(currency=currency, amount=amount, balance=amount)])
        )
        apply_batch(session, ledger, runtime.clock.now())
    with runtime.sessions() as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
    body = json.loads(
        sr.event(
            "checkout.session.completed",
            sr.checkout_completed(minor, [invoice_id], currency=currency.lower()),
        )
    )
    event = StripeEventIn(
        id=body["id"], type=body["type"], object=body["data"]["object"], livemode=False
    )
    with runtime.writing() as session:
        result = apply_event(session, event, runtime.clock.now(), {})
    assert result.status == "applied", result.detail
    assert result.outcome.unapplied == 0
    with runtime.sessions() as session:
        payment = session.scalars(select(Payment)).one()
        invoice = session.scalars(select(Invoice)).one()
        assert (payment.amount, payment.currency) == (Decimal(amount), currency)
        assert (invoice.balance, invoice.status) == (Decimal(0), "paid")
