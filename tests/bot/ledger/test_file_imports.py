"""The same ledger file again: skipped when nothing would be written, imported in full whenever its
bytes, the settings it is read with or the ledger changed since its last import."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Event, Invoice, LedgerFileImport
from integrations.base.ledger import LedgerBatch
from tests.support.ledger_files import HEADER, row, write

SKIPPED = "ledger.csv: unchanged since the import at 2026-03-16 14:00:00 UTC; nothing to write."


def _ledger(tmp_path: Path) -> Path:
    return write(
        tmp_path / "ledger.csv",
        [
            row(),
            row(invoice_number="INV-2", amount="450.00", balance="450.00"),
            row(customer_id="C-2", customer_name="Harbor Family Dental", email="ap@harbor.example"),
        ],
    )


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    session.rollback()
    rows: list[tuple[Any, ...]] = []
    for model in (Customer, Contact, Invoice, Event, LedgerFileImport):
        table = model.__table__
        rows.extend(tuple(r) for r in session.execute(select(table)))
    return sorted(rows, key=repr)


def test_the_same_file_again_is_skipped_with_the_time_of_its_import_and_writes_nothing(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = _ledger(tmp_path)
    assert cli("import-csv", str(path)).code == 0
    before = _snapshot(session)
    again = cli("import-csv", str(path))
    assert again.code == 0
    assert again.stdout.strip() == SKIPPED
    assert _snapshot(session) == before


def test_a_changed_byte_imports_the_file_in_full(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = _ledger(tmp_path)
    assert cli("import-csv", str(path)).code == 0
    path.write_bytes(path.read_bytes() + b"\r\n")  # a blank line: the same rows
    again = cli("import-csv", str(path))
    assert "ledger.csv: already up to date, nothing changed." in again.stdout
    assert cli("import-csv", str(path)).stdout.strip() == SKIPPED  # and recorded again

    path.write_bytes(path.read_bytes().replace(b"450.00,450.00", b"450.00,400.00"))
    changed = cli("import-csv", str(path))
    assert "1 updated" in changed.stdout
    invoice = session.scalars(select(Invoice).where(Invoice.number == "INV-2")).one()
    assert invoice.balance == Decimal("400.00")


def test_the_same_file_after_a_payment_is_imported_in_full(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = _ledger(tmp_path)
    assert cli("import-csv", str(path)).code == 0
    bank = tmp_path / "bank.csv"
    with bank.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency", "reference", "payer"])
        writer.writerow(["2026-03-15", "450.00", "USD", "Payment INV-2", "Ridgeline Roofing"])
    assert cli("import-payments", str(bank)).code == 0  # at the very instant of the import
    paid = session.scalars(select(Invoice).where(Invoice.number == "INV-2")).one()
    assert paid.status == "paid"

    again = cli("import-csv", str(path))
    assert again.code == 0
    # Read and compared in full: the ledger's higher balance does not undo arbot's payment.
    assert "already up to date, nothing changed" in again.stdout
    session.rollback()
    assert session.scalars(select(Invoice.status).where(Invoice.number == "INV-2")).one() == "paid"
    assert cli("import-csv", str(path)).stdout.strip() == SKIPPED


def test_the_same_file_read_with_another_phone_region_is_imported_in_full(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "ledger.csv", [row(phone="020 7946 0958")])
    monkeypatch.setenv("ARBOT_PHONE_REGION", "GB")
    assert cli("import-csv", str(path)).code == 0
    assert cli("import-csv", str(path)).stdout.strip() == SKIPPED
    monkeypatch.setenv("ARBOT_PHONE_REGION", "US")
    again = cli("import-csv", str(path))
    assert again.code == 1  # not a US number: the file is read again, and refused
    assert "row 2, phone" in again.stderr


def test_the_same_file_read_in_another_timezone_is_imported_in_full(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paid_date is stored from the start of that day in the business's timezone: the same
    bytes read in another one store another instant, so they are not skipped."""
    rows = [row(balance="0.00", paid_date="2026-02-20")]
    path = write(tmp_path / "ledger.csv", rows, [*HEADER, "paid_date"])
    monkeypatch.setenv("ARBOT_TIMEZONE", "UTC")
    assert cli("import-csv", str(path)).code == 0
    assert cli("import-csv", str(path)).stdout.strip() == SKIPPED
    monkeypatch.setenv("ARBOT_TIMEZONE", "Asia/Tokyo")
    again = cli("import-csv", str(path))
    assert again.code == 0
    assert again.stdout.strip() != SKIPPED
    session.rollback()
    paid_at = session.scalars(select(Invoice.paid_at)).one()
    assert paid_at == datetime(2026, 2, 19, 15, 0, tzinfo=UTC)  # midnight in Tokyo


def test_another_file_in_between_makes_the_first_one_import_in_full(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = _ledger(tmp_path)
    other = write(tmp_path / "other.csv", [row(customer_id="C-9", email="ap@nine.example")])
    assert cli("import-csv", str(path)).code == 0
    assert "1 invoices added" in cli("import-csv", str(other)).stdout
    again = cli("import-csv", str(path))
    assert "already up to date, nothing changed" in again.stdout


def test_a_file_with_a_bad_row_records_nothing_and_is_checked_again(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(), row(invoice_number="INV-2", currency="XXZ")])
    assert cli("import-csv", str(path)).code == 1
    again = cli("import-csv", str(path))
    assert again.code == 1
    assert "row 3, currency" in again.stderr
    session.rollback()
    assert session.scalars(select(LedgerFileImport)).all() == []


def test_a_file_the_screening_would_cut_imports_nothing_and_names_each_problem(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the reader lets through that the ledger cannot hold fails the whole file, as a bad
    # row does, instead of its customer being left out while the rest imports with exit 0.
    import integrations.csv_ledger

    read = integrations.csv_ledger.read_ledger_csv

    def read_past_a_column(*args: Any, **kwargs: Any) -> LedgerBatch:
        batch = read(*args, **kwargs)
        batch.customers["C-2"].owner_slack_id = "U" + "0" * 40
        return batch

    monkeypatch.setattr(integrations.csv_ledger, "read_ledger_csv", read_past_a_column)
    path = _ledger(tmp_path)
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "ledger.csv: 2 problems, nothing was imported" in result.stderr
    assert (
        "customer Harbor Family Dental (C-2), owner_slack_id: is 41 characters long; at most 32 fit"
        in result.stderr
    )
    assert "invoice INV-1 of customer C-2, is not stored, as its customer is not" in result.stderr
    assert _snapshot(session) == []
