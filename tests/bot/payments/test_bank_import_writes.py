"""A bank file stored in bulk leaves the database exactly as recording its payments one at a time
through `record_payment` does: the same payments, allocations, balances, events (kinds, order and
payloads), reviews and cancelled reminders, on both databases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from benchmarks.reconcile import ledger_rows, payment_rows, write_payments
from bot.core.models import (
    Customer,
    Event,
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentReview,
    Reminder,
)
from bot.core.runtime import Runtime
from bot.ledger.sample import write_csv
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from bot.payments.reconcile import Matcher
from bot.payments.record import cancel_for_invoices, record_payment
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.base.payments import BankPayment
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments


def _book(runtime: Runtime, tmp_path: Path) -> list[BankPayment]:
    """A generated book of 400 open invoices with today's reminders planned, and a bank file of
    every kind of payment against it (by reference, exact amount, combination, in part, none)."""
    ledger = ledger_rows(invoices=400)
    with runtime.writing() as session:
        apply_batch(
            session, read_ledger_csv(write_csv(tmp_path / "book.csv", ledger)), runtime.clock.now()
        )
        run_plan(
            session,
            PlanRules.from_settings(runtime.settings),
            runtime.today(),
            runtime.clock.now(),
            False,
        )
    return read_payments(write_payments(tmp_path / "feed.csv", payment_rows(ledger, 120)))


def _one_at_a_time(session: Session, payments: list[BankPayment], now: datetime) -> None:
    """The file recorded payment by payment through record_payment, as each was decided."""
    names = {c: [name] for c, name in session.execute(select(Customer.id, Customer.name))}
    matcher = Matcher(
        bank_import.open_invoices(session),
        customer_aliases=names,
        references=[p.reference for p in payments if p.reference],
    )
    touched: list[int] = []
    for payment in payments:
        decision = matcher.decide(payment)
        match = decision.auto
        if match is not None:
            matcher.apply(match)
        outcome = record_payment(
            session,
            source=bank_import.SOURCE,
            external_id=payment.external_id,
            customer_id=None if match is None else match.customer_id,
            received_on=payment.received_on,
            amount=payment.amount,
            currency=payment.currency,
            invoice_ids=[] if match is None else [a.invoice_id for a in match.allocations],
            amounts=[] if match is None else [a.amount for a in match.allocations],
            now=now,
            reference=payment.reference or None,
            payer=payment.payer or None,
            cancel=False,
        )
        touched += outcome.closed + outcome.reduced
        if match is None:
            why = decision.review_reason
            candidates = [{**m.as_json(), "why": why} for m in decision.matches]
            session.add(
                PaymentReview(
                    payment_id=outcome.payment_id,
                    candidates=candidates or [{"why": why}],
                    state="open",
                    created_at=now,
                )
            )
    session.flush()
    cancel_for_invoices(session, touched, now)
    session.flush()


def _written(session: Session, after_event: int) -> dict[str, Any]:
    """What the import wrote, without row ids (a PostgreSQL sequence moves on past a rollback):
    each row pointed at by its natural key, in the order written."""
    number = dict(session.execute(select(Invoice.id, Invoice.number)).all())
    paid_by = dict(session.execute(select(Payment.id, Payment.external_id)).all())
    payments = session.execute(
        select(
            Payment.source,
            Payment.external_id,
            Payment.customer_id,
            Payment.received_on,
            Payment.amount,
            Payment.currency,
            Payment.reference,
            Payment.payer,
            Payment.created_at,
        ).order_by(Payment.id)
    ).all()
    allocations = [
        (paid_by[p], number[i], amount)
        for p, i, amount in session.execute(
            select(
                PaymentAllocation.payment_id, PaymentAllocation.invoice_id, PaymentAllocation.amount
            ).order_by(PaymentAllocation.id)
        )
    ]
    invoices = session.execute(
        select(
            Invoice.number, Invoice.balance, Invoice.status, Invoice.paid_at, Invoice.updated_at
        ).order_by(Invoice.number)
    ).all()
    events = [
        (at, actor, kind, customer, number.get(invoice), reminder, payload)
        for at, actor, kind, customer, invoice, reminder, payload in session.execute(
            select(
                Event.at,
                Event.actor,
                Event.kind,
                Event.customer_id,
                Event.invoice_id,
                Event.reminder_id,
                Event.payload,
            )
            .where(Event.id > after_event)
            .order_by(Event.id)
        )
    ]
    reviewed = aliased(Payment)
    reviews = session.execute(
        select(reviewed.external_id, PaymentReview.candidates, PaymentReview.state)
        .join(reviewed, reviewed.id == PaymentReview.payment_id)
        .order_by(PaymentReview.id)
    ).all()
    reminders = session.execute(
        select(Reminder.id, Reminder.state, Reminder.cancel_reason).order_by(Reminder.id)
    ).all()
    return {
        "payments": payments,
        "allocations": allocations,
        "invoices": invoices,
        "events": events,
        "reviews": reviews,
        "reminders": reminders,
    }


def test_a_file_stored_in_bulk_is_stored_as_one_payment_at_a_time_stores_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    payments = _book(runtime, tmp_path)
    now = runtime.clock.now()
    with runtime.writing() as session:
        last_event = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
        _one_at_a_time(session, payments, now)
        expected = _written(session, last_event)
        session.rollback()
    with runtime.writing() as session:
        summary = bank_import.import_payments(session, payments, "feed.csv", now)
        session.flush()
        stored = _written(session, last_event)

    assert summary.applied > 60 and summary.to_review > 10
    assert len(summary.outcome.closed) > 50 and summary.outcome.reduced
    assert len(summary.outcome.cancelled) >= 5
    kinds = {event[2] for event in stored["events"]}
    assert {"payment.received", "payment.allocated", "invoice.paid"} <= kinds
    for what in expected:
        assert stored[what] == expected[what], what
