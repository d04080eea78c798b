"""A new book imported into an empty database: exactly the customers, contacts, invoices and audit
events the file says, column by column, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Event, Invoice
from tests.support.ledger_files import HEADER, row, write

AT = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # the tests' clock
FULL_HEADER = [*HEADER, "pdf_url", "language"]

ROWS = [
    row(),
    row(invoice_number="INV-2", amount="99.95", balance="0.00", contact_name=""),
    row(
        invoice_number="INV-3",
        issue_date="2026-02-01",
        due_date="2026-03-03",
        amount="310.5",
        balance="10.25",
        contact_name="Sam Ortiz",
        email="sam@ridgeline.example",
        phone="",
        sms_consent="",
        pdf_url="https://files.example/inv-3.pdf",
    ),
    row(
        customer_id="C-2",
        customer_name="Harbor Family Dental",
        invoice_number="H-7",
        currency="EUR",
        amount="80.00",
        balance="80.00",
        contact_name="Léa Martin",
        email="Billing@Harbor.Example",
        phone="",
        sms_consent="false",
        tier="strategic",
        owner_slack_id="",
        timezone="",
        never_automate="true",
        tags="",
        language="fr",
    ),
    row(
        customer_id="C-2",
        customer_name="Harbor Family Dental",
        invoice_number="H-8",
        issue_date="2026-03-01",
        due_date="2026-03-31",
        currency="EUR",
        amount="20.00",
        balance="20.00",
        contact_name="",
        email="billing@harbor.example",
        phone="",
        sms_consent="",
        tier="",
        owner_slack_id="",
        timezone="",
        never_automate="",
        tags="",
    ),
    row(
        customer_id="C-3",
        customer_name="Lakeside Tools",
        invoice_number="L-1",
        currency="USD",
        amount="15.00",
        balance="15.00",
        contact_name="Dee",
        email="",
        phone="(312) 555-0199",
        sms_consent="false",
        tier="transactional",
        owner_slack_id="",
        timezone="Europe/London",
        never_automate="",
        tags="Hardware; hardware;b2b",
    ),
    row(
        customer_id="C-3",
        customer_name="Lakeside Tools",
        invoice_number="L-2",
        currency="JPY",
        amount="5000",
        balance="5000",
        contact_name="",
        email="",
        phone="",
        sms_consent="",
        tier="",
        owner_slack_id="",
        timezone="",
        never_automate="",
        tags="",
    ),
]


def _stored(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of the four tables in id order, without its id, each id it points at shown
    as the key it stands for (a customer's external id, an invoice's number): the rows then read
    alike on both databases."""
    session.rollback()
    customers = {c.id: c.external_id for c in session.scalars(select(Customer))}
    invoices = {i.id: i.number for i in session.scalars(select(Invoice))}
    keys = {"customer_id": customers, "invoice_id": invoices}

    def rows(model: Any) -> list[dict[str, Any]]:
        table = model.__table__
        return [
            {
                name: keys[name].get(value, value) if name in keys else value
                for name, value in stored.items()
                if name != "id"
            }
            for stored in session.execute(select(table).order_by(table.c.id)).mappings()
        ]

    return {
        "customers": rows(Customer),
        "contacts": rows(Contact),
        "invoices": rows(Invoice),
        "events": rows(Event),
    }


def _customer(external_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "source": "csv",
        "external_id": external_id,
        "name": name,
        "tier": "standard",
        "owner_slack_id": None,
        "timezone": None,
        "never_automate": False,
        "paused_until": None,
        "currency": None,
        "tags": [],
        "crm_ref": None,
        "language": None,
        "created_at": AT,
        "updated_at": AT,
        **fields,
    }


def _contact(customer: str, name: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "name": name,
        "email": None,
        "phone": None,
        "role": "billing",
        "timezone": None,
        "sms_consent": False,
        "sms_consent_at": None,
        "sms_consent_source": None,
        "email_opted_out_at": None,
        "sms_opted_out_at": None,
        "email_unusable_at": None,
        "sms_unusable_at": None,
        "language": None,
        "created_at": AT,
        "updated_at": AT,
        **fields,
    }


def _invoice(
    customer: str, number: str, currency: str, total: str, **fields: Any
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "source": "csv",
        "external_id": number,
        "number": number,
        "issue_date": date(2026, 1, 15),
        "due_date": date(2026, 2, 14),
        "currency": currency,
        "total": Decimal(total),
        "balance": Decimal(total),
        "status": "open",
        "disputed": False,
        "dispute_reason": None,
        "promise_date": None,
        "payment_plan": False,
        "payment_link": None,
        "document_url": None,
        "paid_at": None,
        "created_at": AT,
        "updated_at": AT,
        **fields,
    }


def _event(kind: str, customer: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": AT,
        "actor": "system",
        "kind": kind,
        "customer_id": customer,
        "invoice_id": None,
        "reminder_id": None,
        "payload": payload,
    }


ADDED = {"source": "csv", "from": "book.csv"}
EXPECTED = {
    "customers": [
        _customer(
            "C-1",
            "Ridgeline Roofing",
            owner_slack_id="U07DANA01",
            timezone="America/Chicago",
            currency="USD",
            tags=["contractor", "retainage"],
        ),
        _customer(
            "C-2",
            "Harbor Family Dental",
            tier="strategic",
            never_automate=True,
            currency="EUR",
            language="fr",
        ),
        # invoices in two currencies: no one currency of the customer's
        _customer(
            "C-3",
            "Lakeside Tools",
            tier="transactional",
            timezone="Europe/London",
            tags=["b2b", "hardware"],
        ),
    ],
    "contacts": [
        _contact(
            "C-1",
            "Maria Garcia",
            email="ap@ridgeline.example",
            phone="+13125550142",
            timezone="America/Chicago",
            sms_consent=True,
            sms_consent_at=AT,
            sms_consent_source="book.csv row 2",
        ),
        _contact("C-1", "Sam Ortiz", email="sam@ridgeline.example", timezone="America/Chicago"),
        _contact("C-2", "Léa Martin", email="Billing@harbor.example", language="fr"),
        _contact("C-3", "Dee", phone="+13125550199", timezone="Europe/London"),
    ],
    "invoices": [
        _invoice("C-1", "INV-1", "USD", "1200.00"),
        _invoice("C-1", "INV-2", "USD", "99.95", balance=Decimal(0), status="paid", paid_at=AT),
        _invoice(
            "C-1",
            "INV-3",
            "USD",
            "310.50",
            balance=Decimal("10.25"),
            issue_date=date(2026, 2, 1),
            due_date=date(2026, 3, 3),
            document_url="https://files.example/inv-3.pdf",
        ),
        _invoice("C-2", "H-7", "EUR", "80.00"),
        _invoice(
            "C-2", "H-8", "EUR", "20.00", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 31)
        ),
        _invoice("C-3", "L-1", "USD", "15.00"),
        _invoice("C-3", "L-2", "JPY", "5000"),
    ],
    "events": [
        _event("customer.added", "C-1", ADDED),
        _event("customer.added", "C-2", ADDED),
        _event("customer.added", "C-3", ADDED),
        _event(
            "ledger.imported",
            None,
            {
                "source": "csv",
                "label": "book.csv",
                "customers_created": 3,
                "customers_updated": 0,
                "contacts_created": 4,
                "contacts_updated": 0,
                "invoices_created": 7,
                "invoices_updated": 0,
                "invoices_unchanged": 0,
                "invoices_paid": 0,
                "invoices_reopened": 0,
                "invoices_voided": 0,
                "payments_recorded": 0,
                "reminders_cancelled": 0,
            },
        ),
    ],
}


def test_a_new_book_stores_what_the_file_says(cli: Any, session: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "book.csv", ROWS, header=FULL_HEADER)
    result = cli("import-csv", str(path))
    assert result.code == 0, result.stderr
    stored = _stored(session)
    for table, rows in EXPECTED.items():
        assert stored[table] == rows, table


def test_the_same_book_again_changes_nothing(cli: Any, session: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "book.csv", ROWS, header=FULL_HEADER)
    assert cli("import-csv", str(path)).code == 0
    # one more byte: not the file last imported, so read and compared in full
    path.write_bytes(path.read_bytes() + b"\r\n")
    assert cli("import-csv", str(path)).code == 0
    assert _stored(session) == EXPECTED
