"""The last check of a ledger batch before it is stored: a record no ledger may hold is taken out,
named with its field, and the rest of the batch is stored, on both databases (PostgreSQL refused
the whole batch with a raw error; SQLite stored what would break the reports or show reversed in
Slack)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.core.errors import ValidationFailed
from bot.core.models import Contact, Customer, Invoice, Payment
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from integrations.base.ledger import (
    ContactRecord,
    CustomerRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
)
from tests.conftest import NOW


def _invoice(customer_id: str, number: str, **fields: object) -> InvoiceRecord:
    record = InvoiceRecord(
        customer_external_id=customer_id,
        number=number,
        issue_date=date(2026, 1, 15),
        due_date=date(2026, 2, 14),
        currency="USD",
        total=Decimal("100.00"),
        balance=Decimal("100.00"),
        external_id=f"qb-{number}",
    )
    return record._replace(**fields)


def _payment(payment_id: str, customer_id: str = "1") -> PaymentRecord:
    return PaymentRecord(payment_id, customer_id, date(2026, 3, 10), Decimal("5.00"), "USD")


def _good_batch() -> LedgerBatch:
    """What stays whatever is added: one customer with a contact, one invoice, one payment."""
    batch = LedgerBatch("quickbooks", "QuickBooks company 9341")
    batch.customers["1"] = CustomerRecord(
        "1",
        "Bill's Windsurf Shop",
        contacts=[ContactRecord("Bill", "ap@bill.example", None, False, None)],
    )
    batch.invoices.append(_invoice("1", "1040"))
    batch.payments.append(_payment("p-1"))
    return batch


def _add_customer(batch: LedgerBatch, customer: CustomerRecord) -> None:
    batch.customers[customer.external_id] = customer
    batch.invoices.append(_invoice(customer.external_id, f"{customer.external_id}-1"))


CASES: list[tuple[str, Callable[[LedgerBatch], None], list[str]]] = [
    (
        "a due date typed as 9999-12-31",
        lambda b: b.invoices.append(_invoice("1", "1041", due_date=date(9999, 12, 31))),
        [
            "invoice 1041 of customer 1, due_date: 9999-12-31 is outside the dates arbot accepts "
            "(1990-01-01 to 2100-12-31); check it for a typo"
        ],
    ),
    (
        "an issue date in year 1",
        lambda b: b.invoices.append(_invoice("1", "1041", issue_date=date(1, 1, 1))),
        ["invoice 1041 of customer 1, issue_date: 0001-01-01 is outside the dates arbot accepts"],
    ),
    (
        "a name that shows reversed",
        lambda b: _add_customer(b, CustomerRecord("2", "Acme \u202eDTL")),
        [
            "customer Acme \\u202eDTL (2), name: contains a control character (U+202E at "
            "character 6); remove it",
            "invoice 2-1 of customer 2, is not stored, as its customer is not (see that "
            "customer's problem)",
        ],
    ),
    (
        "a name longer than its column",
        lambda b: _add_customer(b, CustomerRecord("3", "N" * 300)),
        [
            f"customer {'N' * 59}… (3), name: is 300 characters long; at most 256 fit",
            "invoice 3-1 of customer 3, is not stored, as its customer is not",
        ],
    ),
    (
        "a contact's name with a bell",
        lambda b: b.customers["1"].contacts.append(
            ContactRecord("Bill\x07", "bill@bill.example", None, False, None)
        ),
        [
            "customer Bill's Windsurf Shop, contact bill@bill.example, name: contains a control "
            "character (U+0007 at character 5); remove it; the customer is kept without this "
            "contact"
        ],
    ),
    (
        "a NUL in a payment link",
        lambda b: b.invoices.append(_invoice("1", "1041", payment_link="https://pay\x00.example")),
        ["invoice 1041 of customer 1, payment_link: contains a control character (U+0000"],
    ),
    (
        "a NUL in a payment's reference",
        lambda b: b.payments.append(replace(_payment("p-2"), reference="wire\x00")),
        ["payment p-2, reference: contains a control character (U+0000 at character 5)"],
    ),
    (
        "one invoice number twice for one customer",
        lambda b: b.invoices.append(_invoice("1", "1040", external_id="qb-other")),
        [
            "invoice 1040 of customer 1, is in QuickBooks company 9341 twice (ids qb-1040 and "
            "qb-other); the first is kept"
        ],
    ),
    (
        "one payment id twice",
        lambda b: b.payments.append(_payment("p-1")),
        ["payment p-1, is in QuickBooks company 9341 twice; the first is kept"],
    ),
    (
        "an invoice of a customer neither in the batch nor stored",
        lambda b: b.invoices.append(_invoice("77", "7701")),
        [
            "invoice 7701, customer: 77 is not a customer in QuickBooks company 9341 or in the "
            "ledger; the invoice is not stored"
        ],
    ),
]


@pytest.mark.parametrize(("what", "spoil", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_record_no_ledger_may_hold_is_named_with_its_field_and_the_rest_is_stored(
    runtime: Runtime, what: str, spoil: Callable[[LedgerBatch], None], expected: list[str]
) -> None:
    batch = _good_batch()
    spoil(batch)
    with runtime.writing() as session:
        apply_batch(session, batch, NOW)

    messages = [p.message for p in batch.problems]
    assert len(messages) == len(expected), messages
    for message, start in zip(messages, expected, strict=True):
        assert message.startswith(start)
    with runtime.sessions() as session:
        assert session.scalars(select(Customer.external_id)).all() == ["1"]
        assert session.scalars(select(Contact.email)).all() == ["ap@bill.example"]
        assert session.scalars(select(Invoice.number)).all() == ["1040"]
        assert session.scalars(select(Payment.external_id)).all() == ["p-1"]


def test_an_invoice_of_a_customer_stored_by_an_earlier_sync_is_kept(runtime: Runtime) -> None:
    with runtime.writing() as session:
        apply_batch(session, _good_batch(), NOW)
    later = LedgerBatch("quickbooks", "QuickBooks company 9341")
    later.invoices.append(_invoice("1", "1041"))
    with runtime.writing() as session:
        apply_batch(session, later, NOW)
    assert later.problems == []
    with runtime.sessions() as session:
        assert sorted(session.scalars(select(Invoice.number))) == ["1040", "1041"]


@pytest.mark.parametrize(("what", "spoil", "expected"), CASES, ids=[c[0] for c in CASES])
def test_all_or_nothing_a_record_no_ledger_may_hold_fails_the_batch_and_nothing_is_stored(
    runtime: Runtime, what: str, spoil: Callable[[LedgerBatch], None], expected: list[str]
) -> None:
    batch = _good_batch()
    spoil(batch)
    with pytest.raises(ValidationFailed) as failed, runtime.writing() as session:
        apply_batch(session, batch, NOW, all_or_nothing=True)

    assert failed.value.source == "QuickBooks company 9341"
    problems = failed.value.problems
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)
    assert "nothing was imported" in str(failed.value)
    with runtime.sessions() as session:
        for model in (Customer, Contact, Invoice, Payment):
            assert session.scalars(select(model)).all() == []


@pytest.mark.parametrize("void_first", [True, False], ids=["void first", "void second"])
def test_a_void_invoice_never_keeps_its_number_from_a_live_one_given_it_again(
    runtime: Runtime, void_first: bool
) -> None:
    with runtime.writing() as session:
        apply_batch(session, _good_batch(), NOW)  # 1040, id qb-1040, open
    later = LedgerBatch("quickbooks", "QuickBooks company 9341")
    void = _invoice("1", "1040", status="void", balance=Decimal("0.00"))
    live = _invoice(
        "1", "1040", external_id="qb-new", total=Decimal("55.00"), balance=Decimal("55.00")
    )
    later.invoices.extend([void, live] if void_first else [live, void])
    with runtime.writing() as session:
        apply_batch(session, later, NOW)
    assert later.problems == []
    with runtime.sessions() as session:
        stored = session.execute(
            select(Invoice.external_id, Invoice.number, Invoice.status, Invoice.total)
        ).all()
    assert sorted(stored) == [
        ("qb-1040", "1040 (deleted, id qb-1040)", "void", Decimal("100.00")),
        ("qb-new", "1040", "open", Decimal("55.00")),
    ]
