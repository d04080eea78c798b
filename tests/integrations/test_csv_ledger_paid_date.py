"""The ledger CSV's optional paid_date: the day a paid invoice was paid, stored as the start of
that day in the business's timezone (America/New_York here), checked against its row and today,
corrected when a later file says another day, and learned from by the forecast."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Event, Invoice
from bot.escalations.thread import late_payments_this_year
from bot.forecasting.history import payment_records
from integrations.csv_ledger import read_ledger_csv
from tests.conftest import NOW
from tests.support.ledger_files import HEADER, row, write

WITH_PAID = [*HEADER, "paid_date"]
TODAY = date(2026, 3, 16)  # NOW's day in New York
# 2026-02-20 00:00 in New York (EST, UTC-5)
FEB_20 = datetime(2026, 2, 20, 5, 0, tzinfo=UTC)


def _paid_at(session: Session, number: str) -> datetime | None:
    session.rollback()
    return session.scalar(select(Invoice.paid_at).where(Invoice.number == number))


def _import(cli: Any, path: Path, rows: list[dict[str, str]]) -> Any:
    result = cli("import-csv", str(write(path, rows, WITH_PAID)))
    assert result.code == 0, result.stderr
    return result


def test_the_column_is_read_as_the_start_of_its_day_in_the_business_timezone(
    tmp_path: Path,
) -> None:
    rows = [
        row(invoice_number="INV-1", balance="0.00", paid_date="2026-02-20"),
        row(invoice_number="INV-2", balance="0.00", paid_date=""),
    ]
    batch = read_ledger_csv(
        write(tmp_path / "l.csv", rows, WITH_PAID), today=TODAY, timezone="America/New_York"
    )
    assert [invoice.paid_at for invoice in batch.invoices] == [FEB_20, None]


@pytest.mark.parametrize("book", ["new", "known"])
def test_a_paid_row_stores_its_paid_date_and_the_forecast_reads_that_day_back(
    cli: Any, session: Session, tmp_path: Path, book: str
) -> None:
    if book == "known":  # an import into a book already stored, not a new book's
        _import(cli, tmp_path / "first.csv", [row(invoice_number="INV-0")])
    rows = [
        row(invoice_number="INV-0"),
        row(invoice_number="INV-1", balance="0.00", paid_date="2026-02-20"),
        row(invoice_number="INV-2", balance="0.00"),  # no paid date: paid when seen, as before
    ]
    _import(cli, tmp_path / "ledger.csv", rows)

    assert _paid_at(session, "INV-1") == FEB_20
    assert _paid_at(session, "INV-2") == NOW
    paid_on = {
        record.paid_on
        for record in payment_records(session, TODAY, "America/New_York", paid_only=True)
    }
    assert paid_on == {date(2026, 2, 20), TODAY}


def test_an_open_invoice_the_file_says_was_paid_takes_that_day(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])
    result = _import(cli, tmp_path / "day2.csv", [row(balance="0.00", paid_date="2026-02-20")])
    assert "Now paid: INV-1" in result.stdout
    assert _paid_at(session, "INV-1") == FEB_20


PAID_DATE_PROBLEMS = [
    (
        {"paid_date": "2026-02-20"},
        "row 3, paid_date: 2026-02-20 is given but the balance is 1200.00; only a paid invoice "
        "(balance 0) has a paid date",
    ),
    (
        {"balance": "0.00", "paid_date": "2026-01-14"},
        "row 3, paid_date: 2026-01-14 is before the issue date 2026-01-15",
    ),
    (
        {"balance": "0.00", "paid_date": "2026-03-17"},
        "row 3, paid_date: 2026-03-17 is after today (2026-03-16)",
    ),
    (
        {"balance": "0.00", "paid_date": "20/02/2026"},
        "row 3, paid_date: '20/02/2026' is not an ISO date",
    ),
    (
        {"balance": "0.00", "paid_date": "2026-02-30"},
        "row 3, paid_date: '2026-02-30' is not a real date",
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), PAID_DATE_PROBLEMS, ids=[p[1][21:44] for p in PAID_DATE_PROBLEMS]
)
def test_a_bad_paid_date_names_the_file_row_and_column_and_nothing_is_written(
    cli: Any, session: Session, tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    # the first row repeats the customer's cells: the second's invoice is read the quick way
    rows = [row(invoice_number="INV-0"), row(**fields)]
    result = cli("import-csv", str(write(tmp_path / "ledger.csv", rows, WITH_PAID)))
    assert result.code == 1
    assert "ledger.csv" in result.stderr
    assert expected in " ".join(result.stderr.split())
    assert "nothing was imported" in result.stderr
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_a_paid_invoice_whose_file_says_another_day_is_corrected_with_an_event(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row(balance="0.00")])  # paid when seen: NOW
    assert _paid_at(session, "INV-1") == NOW

    _import(cli, tmp_path / "day2.csv", [row(balance="0.00", paid_date="2026-02-20")])

    assert _paid_at(session, "INV-1") == FEB_20
    event = session.scalars(select(Event).where(Event.kind == "invoice.paid_at_changed")).one()
    assert event.payload == {
        "number": "INV-1",
        "paid_before": NOW.isoformat(),
        "paid_after": FEB_20.isoformat(),
    }
    shown = " ".join(cli("status", "C-1").stdout.split())
    assert f"INV-1 paid at {FEB_20:%Y-%m-%d %H:%M} UTC (was {NOW:%Y-%m-%d %H:%M} UTC)" in shown

    # the same day again, or no day at all: nothing changes
    # (the file of day 2 with a blank line after it: read again, not skipped by its digest)
    day3 = tmp_path / "day3.csv"
    day3.write_bytes((tmp_path / "day2.csv").read_bytes() + b"\r\n")
    again = cli("import-csv", str(day3))
    assert "already up to date, nothing changed" in again.stdout
    unsaid = _import(cli, tmp_path / "day4.csv", [row(balance="0.00")])
    assert "already up to date, nothing changed" in unsaid.stdout
    assert _paid_at(session, "INV-1") == FEB_20
    session.rollback()
    assert (
        session.scalar(
            select(func.count()).select_from(Event).where(Event.kind == "invoice.paid_at_changed")
        )
        == 1
    )


def test_a_corrected_paid_day_and_due_date_are_both_said(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row(balance="0.00", due_date="2026-02-10")])

    _import(
        cli,
        tmp_path / "day2.csv",
        [row(balance="0.00", due_date="2026-02-12", paid_date="2026-02-20")],
    )

    session.rollback()
    kinds = session.scalars(
        select(Event.kind).where(
            Event.kind.in_(("invoice.paid_at_changed", "invoice.due_date_changed"))
        )
    ).all()
    assert sorted(kinds) == ["invoice.due_date_changed", "invoice.paid_at_changed"]


def test_a_paid_day_east_of_utc_counts_late_on_its_own_day(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paid on 2026-02-20 in Tokyo (stored 2026-02-19 15:00 UTC), due the 19th: one day late, as
    the escalation thread's pattern counts it in the business's timezone, not in UTC."""
    monkeypatch.setenv("ARBOT_TIMEZONE", "Asia/Tokyo")
    _import(
        cli,
        tmp_path / "l.csv",
        [row(balance="0.00", due_date="2026-02-19", paid_date="2026-02-20")],
    )
    session.rollback()
    customer_id = session.scalars(select(Invoice.customer_id)).one()

    assert late_payments_this_year(session, customer_id, TODAY, "Asia/Tokyo") == 1


def test_a_paid_day_from_a_payment_arbot_recorded_is_not_moved_by_the_file(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])  # open, 1200.00
    bank = tmp_path / "bank.csv"
    bank.write_text(
        "date,amount,currency,reference,payer\n"
        "2026-03-14,1200.00,USD,Payment INV-1 thanks,RIDGELINE ROOFING\n",
        encoding="utf-8",
    )
    paid = cli("import-payments", str(bank))
    assert paid.code == 0, paid.stderr
    recorded = _paid_at(session, "INV-1")
    assert recorded is not None

    # the ledger catches up, with a day of its own for the payment
    _import(cli, tmp_path / "day2.csv", [row(balance="0.00", paid_date="2026-03-10")])

    assert _paid_at(session, "INV-1") == recorded
    session.rollback()
    changed = select(func.count()).select_from(Event).where(Event.kind == "invoice.paid_at_changed")
    assert session.scalar(changed) == 0


def test_the_forecast_learns_a_customers_habit_from_the_files_paid_dates(
    cli: Any, tmp_path: Path
) -> None:
    rows = [
        row(
            invoice_number=f"INV-{month}",
            issue_date=f"2025-{month:02d}-01",
            due_date=f"2025-{month:02d}-10",
            balance="0.00",
            paid_date=f"2025-{month:02d}-20",  # ten days late, every time
        )
        for month in range(1, 13)
    ]
    rows.append(row(invoice_number="INV-OPEN", issue_date="2026-02-18", due_date="2026-03-20"))
    _import(cli, tmp_path / "ledger.csv", rows)

    result = cli("forecast", "--json")

    assert result.code == 0, result.stderr
    (open_invoice,) = json.loads(result.stdout)["invoices"]
    assert open_invoice["basis"] == "customer"
    assert open_invoice["expected_pay_date"] == "2026-03-30"
