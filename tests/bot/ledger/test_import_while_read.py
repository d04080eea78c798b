"""A new book written part by part while its file is still being read: the same rows as when it
is written at once, and nothing at all when a row anywhere is bad or the database refuses a part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import integrations.csv_ledger as csv_ledger
from bot.core.errors import ValidationFailed
from bot.core.runtime import Runtime
from bot.ledger import invoices, upsert
from handlers.cli.ledger import import_file
from tests.bot.ledger.test_new_book import EXPECTED, FULL_HEADER, ROWS, _customer, _stored
from tests.support.ledger_files import row, write

NOTHING: dict[str, list[Any]] = {"customers": [], "contacts": [], "invoices": [], "events": []}


@pytest.mark.parametrize("part_rows", [1, 2, 5])
def test_a_new_book_written_in_parts_stores_what_the_file_says(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part_rows: int
) -> None:
    monkeypatch.setattr(csv_ledger, "PART_ROWS", part_rows)
    path = write(tmp_path / "book.csv", ROWS, header=FULL_HEADER)
    result = cli("import-csv", str(path))
    assert result.code == 0, result.stderr
    assert _stored(session) == EXPECTED


def _filled_in_later() -> list[dict[str, str]]:
    """C-1's first row leaves its customer fields empty; a row of it in a later part gives them."""
    blank = {"tier": "", "owner_slack_id": "", "timezone": "", "tags": "", "language": ""}
    blank["never_automate"] = ""
    return [
        row(invoice_number="A-1", **blank),
        row(customer_id="C-2", customer_name="Harbor", invoice_number="B-1", email="b@h.example"),
        row(
            invoice_number="A-2",
            currency="EUR",
            tier="strategic",
            owner_slack_id="U07OTHER1",
            timezone="Europe/Paris",
            tags="Late;b2b",
            language="de",
            never_automate="true",
        ),
    ]


@pytest.mark.parametrize("part_rows", [1, 10_000])
def test_a_customer_field_a_later_part_fills_in_is_stored(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part_rows: int
) -> None:
    monkeypatch.setattr(csv_ledger, "PART_ROWS", part_rows)
    path = write(tmp_path / "book.csv", _filled_in_later(), header=FULL_HEADER)
    result = cli("import-csv", str(path))
    assert result.code == 0, result.stderr
    assert _stored(session)["customers"] == [
        _customer(
            "C-1",
            "Ridgeline Roofing",
            tier="strategic",
            owner_slack_id="U07OTHER1",
            timezone="Europe/Paris",
            never_automate=True,
            tags=["b2b", "late"],
            language="de",
            currency=None,  # USD and EUR: no one currency
        ),
        _customer(
            "C-2",
            "Harbor",
            owner_slack_id="U07DANA01",
            timezone="America/Chicago",
            tags=["contractor", "retainage"],
            currency="USD",
        ),
    ]


def _big_book(count: int) -> list[dict[str, str]]:
    return [
        row(
            customer_id=f"C-{n % 97}",
            customer_name=f"Customer {n % 97}",
            invoice_number=f"I-{n}",
            email=f"ap@c{n % 97}.example",
            phone="",
            sms_consent="false",
        )
        for n in range(count)
    ]


def test_a_bad_row_late_in_a_big_file_writes_nothing_and_every_problem_is_listed(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_ledger, "PART_ROWS", 100)
    rows = _big_book(3000)
    rows[2400]["due_date"] = "2025-01-01"  # before its issue date: file row 2402
    rows[2990]["amount"] = "12.345"  # too many places for USD: file row 2992
    path = write(tmp_path / "book.csv", rows)
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 2402, due_date: 2025-01-01 is before the issue date 2026-01-15" in result.stderr
    assert "row 2992, amount:" in result.stderr
    assert _stored(session) == NOTHING
    # and the same file, mended, imports in full
    rows[2400]["due_date"] = rows[2990]["due_date"]
    rows[2990]["amount"] = "1200.00"
    write(path, rows)
    assert cli("import-csv", str(path)).code == 0
    assert len(_stored(session)["invoices"]) == 3000


def test_the_problems_of_a_file_read_in_parts_are_those_of_the_file_read_at_once(
    tmp_path: Path,
) -> None:
    rows = _big_book(500)
    rows[10]["currency"] = "XYZ"
    rows[450]["email"] = "not an address"
    path = write(tmp_path / "book.csv", rows)
    parts: list[int] = []
    with pytest.raises(ValidationFailed) as at_once:
        csv_ledger.read_ledger_csv(path)
    with pytest.raises(ValidationFailed) as in_parts:
        csv_ledger.read_ledger_csv(
            path, on_part=lambda _c, invoices: parts.append(len(invoices)), part_rows=5
        )
    assert in_parts.value.problems == at_once.value.problems
    assert len(in_parts.value.problems) == 2
    assert parts == [5, 5]  # none handed over once a row had a problem


def test_a_database_error_on_a_part_stops_the_reading_and_writes_nothing(
    runtime: Runtime, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_ledger, "PART_ROWS", 100)
    path = write(tmp_path / "book.csv", _big_book(2000))
    real = invoices._new_invoices
    parts: list[int] = []

    def refused_third(*args: Any) -> dict[str, list[Any]]:
        columns = real(*args)
        parts.append(len(columns["number"]))
        if len(parts) == 3:
            columns["customer_id"][50] = 10**9  # no such customer: the foreign key refuses it
        return columns

    monkeypatch.setattr(upsert, "_new_invoices", refused_third)
    with pytest.raises(DBAPIError):
        import_file(runtime, path)
    assert len(parts) == 3  # no part written after the refused one
    assert _stored(session) == NOTHING
