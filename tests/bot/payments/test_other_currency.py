"""A Stripe payment in another currency than its invoices' pays none of them (money is never
converted), and the person it goes to is told why: the two currencies, not "already paid"."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from bot.core.models import Escalation, Invoice
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.payments.stripe_events import StripeResult, apply_event
from integrations.base.payments import StripeEventIn
from integrations.csv_ledger import read_ledger_csv
from tests.support import stripe_requests as sr
from tests.support.ledger_files import row, write


def _paid(runtime: Runtime, body: bytes) -> StripeResult:
    sent = json.loads(body)
    event = StripeEventIn(
        id=sent["id"], type=sent["type"], object=sent["data"]["object"], livemode=False
    )
    with runtime.writing() as session:
        return apply_event(session, event, runtime.clock.now(), {})


def test_a_payment_in_euros_for_dollar_invoices_names_both_currencies_to_a_person(
    runtime: Runtime, tmp_path: Path
) -> None:
    rows = [
        row(invoice_number="INV-1", amount="1200.00", balance="1200.00"),
        row(invoice_number="INV-2", amount="300.00", balance="300.00"),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Invoice.id).order_by(Invoice.number)))

    body = sr.checkout_completed(150000, ids, "pi_eur", currency="eur")
    result = _paid(runtime, sr.event("checkout.session.completed", body))

    assert result.status == "applied"
    assert (result.outcome.allocated, result.outcome.unapplied) == (Decimal(0), Decimal(1500))
    assert result.outcome.other_currencies == {"USD"}
    with runtime.sessions() as session:
        invoices = session.execute(select(Invoice.status, Invoice.balance)).all()
        escalation = session.scalars(select(Escalation)).one()
    assert sorted(invoices) == [("open", Decimal(300)), ("open", Decimal(1200))]
    assert escalation.reason == "payment_unapplied"
    assert (
        escalation.detail
        == result.detail
        == (
            "1500.00 EUR of Stripe payment pi_eur could not be applied: it was paid in EUR, but its "
            "invoices are in USD, so they stay open (arbot never converts one currency into "
            "another). Refund it and ask for a payment in USD, or record it in the ledger at the "
            "rate the bank used."
        )
    )
    assert "already paid" not in escalation.detail


def test_a_second_payment_in_the_invoices_currency_still_says_they_were_already_paid(
    runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.writing() as session:
        apply_batch(
            session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), runtime.clock.now()
        )
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Invoice.id)))
    amount = 120000  # the whole balance, in cents

    _paid(runtime, sr.event("checkout.session.completed", sr.checkout_completed(amount, ids)))
    again = sr.checkout_completed(amount, ids, "pi_again")
    result = _paid(runtime, sr.event("checkout.session.completed", again))

    assert result.outcome.other_currencies == set()
    assert result.detail.endswith(
        "could not be applied: its invoices were already paid (or changed). A refund may be owed."
    )
