"""Rows written in bulk (COPY on PostgreSQL, one executemany on SQLite) are stored exactly as the
ORM stores them: money exact, instants in UTC, JSON, and the columns' own defaults."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bot.core.models import Customer, Event, Invoice
from bot.core.runtime import Runtime
from bot.ledger.bulk import chunks, insert_rows

NOW = datetime(2026, 3, 16, 9, 30, tzinfo=timezone(timedelta(hours=-5)))


def _customer(external_id: str) -> dict[str, Any]:
    return {
        "source": "csv",
        "external_id": external_id,
        "name": 'Ridgeline \\ Roofing\t"Co"\nLtd',  # what COPY's text format must escape
        "tier": "standard",
        "owner_slack_id": None,
        "timezone": "America/Chicago",
        "never_automate": True,
        "tags": ["retainage", "vip"],
        "currency": None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _invoice(customer_id: int, number: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "source": "csv",
        "external_id": number,
        "number": number,
        "issue_date": date(2026, 1, 15),
        "due_date": date(2026, 2, 14),
        "currency": "KWD",
        "total": Decimal("1200.125"),
        "balance": Decimal("0.0001"),
        "status": "open",
        "paid_at": None,
        "payment_link": None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _stored(runtime: Runtime, model: type[Any], external_id: str) -> dict[str, Any]:
    """The stored row, but for what tells the two apart (its id, external id and number)."""
    table = model.__table__
    with runtime.sessions() as session:
        row = session.execute(select(table).where(table.c.external_id == external_id)).one()
    return {k: v for k, v in row._mapping.items() if k not in ("id", "external_id", "number")}


def test_a_bulk_insert_stores_what_the_orm_stores(runtime: Runtime) -> None:
    with runtime.writing() as session:
        session.add(Customer(**_customer("C-orm")))
        insert_rows(session, Customer, [_customer("C-bulk")])
    assert _stored(runtime, Customer, "C-orm") == _stored(runtime, Customer, "C-bulk")
    with runtime.sessions() as session:
        customer_id = session.scalars(select(Customer.id)).first()
    assert customer_id is not None
    with runtime.writing() as session:
        session.add(Invoice(**_invoice(customer_id, "INV-orm")))
        insert_rows(session, Invoice, [_invoice(customer_id, "INV-bulk")])
    bulk = _stored(runtime, Invoice, "INV-bulk")
    assert _stored(runtime, Invoice, "INV-orm") == bulk
    assert (bulk["total"], bulk["balance"]) == (Decimal("1200.125"), Decimal("0.0001"))
    assert bulk["updated_at"] == NOW.astimezone(UTC)
    assert (bulk["disputed"], bulk["payment_plan"]) == (False, False)  # the columns' defaults
    assert _stored(runtime, Customer, "C-bulk")["name"] == _customer("")["name"]


def test_events_written_in_bulk_read_back_with_their_payloads(runtime: Runtime) -> None:
    rows = [
        {
            "at": NOW,
            "actor": "system",
            "kind": "customer.added",
            "customer_id": None,
            "invoice_id": None,
            "reminder_id": None,
            "payload": {"from": "ledger\\.csv\ttab", "n": index},
        }
        for index in range(3)
    ]
    with runtime.writing() as session:
        insert_rows(session, Event, rows)
    with runtime.sessions() as session:
        stored = session.scalars(select(Event).order_by(Event.id)).all()
    assert [(e.payload, e.at) for e in stored] == [(r["payload"], NOW) for r in rows]


def test_values_converted_once_for_many_rows_are_still_each_rows_own(runtime: Runtime) -> None:
    # Payloads and tags that repeat are converted once, but values equal in Python and written
    # apart in JSON (True and 1, 1 and "1") stay apart; a balance equal to its total, written
    # otherwise or not, is stored as itself.
    payloads = [{"n": 1}, {"n": True}, {"n": "1"}, {"n": 1}, [1], [True], {"n": [1]}] * 200
    rows = [
        {
            "at": NOW,
            "actor": "system",
            "kind": "customer.added",
            "customer_id": None,
            "invoice_id": None,
            "reminder_id": None,
            "payload": payload,
        }
        for payload in payloads
    ]
    with runtime.writing() as session:
        insert_rows(session, Event, rows)
        insert_rows(session, Customer, [_customer("C-1")])
        customer_id = session.scalars(select(Customer.id)).one()
        balances = [Decimal("1200.125"), Decimal("1200.1250"), Decimal("7"), Decimal("0")] * 300
        invoices = [_invoice(customer_id, f"INV-{n}") for n in range(len(balances))]
        for invoice, balance in zip(invoices, balances, strict=True):
            invoice["balance"] = balance
        insert_rows(session, Invoice, invoices)
    with runtime.sessions() as session:
        stored = session.scalars(select(Event.payload).order_by(Event.id)).all()
        amounts = session.execute(select(Invoice.total, Invoice.balance).order_by(Invoice.id))
        assert [tuple(row) for row in amounts] == [
            (Decimal("1200.125"), balance) for balance in balances
        ]
    assert stored == payloads
    assert [type(p["n"]) for p in stored[:3]] == [int, bool, str]  # type: ignore[call-overload]
    assert type(stored[5][0]) is bool  # type: ignore[index]


def test_amounts_and_instants_of_any_form_are_stored_as_their_values(runtime: Runtime) -> None:
    # COPY is handed each date, instant and amount as text: exponents and offsets kept exact
    amounts = [(Decimal("1E+3"), Decimal("5E-4")), (Decimal("12.5000"), Decimal("0E-4"))]
    with runtime.writing() as session:
        insert_rows(session, Customer, [_customer("C-1")])
        customer_id = session.scalars(select(Customer.id)).one()
        invoices = [_invoice(customer_id, f"INV-{n}") for n in range(len(amounts))]
        for invoice, (total, balance) in zip(invoices, amounts, strict=True):
            invoice.update(total=total, balance=balance, paid_at=NOW - timedelta(microseconds=7))
        insert_rows(session, Invoice, invoices)
    with runtime.sessions() as session:
        stored = session.execute(
            select(Invoice.total, Invoice.balance, Invoice.paid_at, Invoice.due_date)
        ).all()
    assert [tuple(row) for row in stored] == [
        (total, balance, NOW - timedelta(microseconds=7), date(2026, 2, 14))
        for total, balance in amounts
    ]


def test_values_repeated_in_other_forms_are_stored_as_the_plain_insert_stores_them(
    runtime: Runtime,
) -> None:
    # Enough rows that a column of few values is converted once per value, and a balance equal
    # to its total is written as the total beside it: equal values in other forms (an exponent,
    # trailing zeros, a negative zero; one instant at other offsets) must still store alike.
    forms = [Decimal("1E+2"), Decimal("100.00"), Decimal("100")]
    offsets = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    rows = 1002
    with runtime.writing() as session:
        insert_rows(session, Customer, [_customer("C-1")])
        customer_id = session.scalars(select(Customer.id)).one()
        made: dict[str, list[dict[str, Any]]] = {"bulk": [], "plain": []}
        for way, invoices in made.items():
            for n in range(rows):
                invoice = _invoice(customer_id, f"{way}-{n}")
                at = NOW.astimezone(offsets[n % 3])
                invoice.update(
                    currency="USD",
                    total=forms[n % 3],
                    # mostly its total in another form; every fourth a negative zero
                    balance=Decimal("-0E-10") if n % 4 == 0 else forms[(n + 1) % 3],
                    paid_at=NOW.astimezone(offsets[(n + 1) % 3]),
                    created_at=at,
                    updated_at=at,
                )
                invoices.append(invoice)
        insert_rows(session, Invoice, made["bulk"])
        session.execute(insert(Invoice), made["plain"])  # each value through its column's type
    compared = (Invoice.total, Invoice.balance, Invoice.paid_at, Invoice.created_at)
    with runtime.sessions() as session:
        stored = {
            number: tuple(values)
            for number, *values in session.execute(
                select(Invoice.number, *compared, Invoice.updated_at, Invoice.due_date)
            )
        }
    assert len(stored) == 2 * rows
    for n in range(rows):
        assert stored[f"bulk-{n}"] == stored[f"plain-{n}"]
        total, balance, paid_at, created_at, updated_at, due_date = stored[f"bulk-{n}"]
        assert (total, balance) == (Decimal(100), Decimal(0) if n % 4 == 0 else Decimal(100))
        assert paid_at == created_at == updated_at == NOW
        assert due_date == date(2026, 2, 14)


def test_chunks_cut_what_is_given_into_parts_the_drivers_take() -> None:
    assert [len(part) for part in chunks(list(range(12_001)))] == [5000, 5000, 2001]
    assert chunks([]) == []


def test_a_failing_bulk_insert_names_no_customer_data(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    private = _customer("Ridgeline Outfitters (private)")
    with pytest.raises(IntegrityError) as failed, runtime.writing() as session:
        insert_rows(session, Customer, [private, private])  # (source, external_id) is unique
    with caplog.at_level(logging.ERROR):
        logging.getLogger("arbot").error("storing failed", exc_info=failed.value)
    told = str(failed.value) + "\n" + caplog.text
    assert "INSERT INTO customers" in told or "COPY customers" in told  # what failed is named
    assert "Ridgeline Outfitters" not in told and "Roofing" not in told
