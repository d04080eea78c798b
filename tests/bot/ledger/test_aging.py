"""Aging buckets, per currency, and DSO; the JSON shape is DESIGN's contract."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.ledger.aging import bucket_for
from tests.support.ledger_files import row, write

AS_OF = date(2026, 3, 16)  # the test clock's date in America/New_York


def _due(days_past_due: int) -> str:
    return (AS_OF - timedelta(days=days_past_due)).isoformat()


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-10, "current"),
        (0, "current"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
    ],
)
def test_bucket_boundaries(days: int, bucket: str) -> None:
    assert bucket_for(days) == bucket


def test_aging_sums_open_balances_by_bucket_per_currency_and_never_across(
    cli: Any, tmp_path: Path
) -> None:
    rows = [
        row(
            invoice_number="A",
            issue_date="2025-01-01",
            due_date=_due(0),
            amount="100.10",
            balance="100.10",
        ),
        row(
            invoice_number="B",
            issue_date="2025-01-01",
            due_date=_due(1),
            amount="50",
            balance="20.05",
        ),
        row(
            invoice_number="C",
            issue_date="2025-01-01",
            due_date=_due(30),
            amount="30",
            balance="30",
        ),
        row(
            invoice_number="D",
            issue_date="2025-01-01",
            due_date=_due(31),
            amount="31",
            balance="31",
        ),
        row(
            invoice_number="E",
            issue_date="2025-01-01",
            due_date=_due(90),
            amount="90",
            balance="90",
        ),
        row(
            invoice_number="F",
            issue_date="2025-01-01",
            due_date=_due(91),
            amount="91",
            balance="91",
        ),
        row(
            invoice_number="G",
            issue_date="2025-01-01",
            due_date=_due(45),
            amount="500",
            balance="0",
        ),
        row(
            invoice_number="H",
            issue_date="2025-01-01",
            due_date=_due(45),
            amount="0.1",
            balance="0.1",
            currency="EUR",
        ),
        row(
            invoice_number="I",
            issue_date="2025-01-01",
            due_date=_due(5),
            amount="1000",
            balance="1000",
            currency="JPY",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    result = cli("aging", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["as_of"] == "2026-03-16"
    assert doc["currencies"] == {
        "EUR": {
            "current": "0.00",
            "1-30": "0.00",
            "31-60": "0.10",
            "61-90": "0.00",
            "90+": "0.00",
            "total": "0.10",
        },
        "JPY": {
            "current": "0",
            "1-30": "1000",
            "31-60": "0",
            "61-90": "0",
            "90+": "0",
            "total": "1000",
        },
        "USD": {
            "current": "100.10",
            "1-30": "50.05",
            "31-60": "31.00",
            "61-90": "90.00",
            "90+": "91.00",
            "total": "362.15",
        },
    }


def test_as_of_moves_the_buckets_and_leaves_out_invoices_not_yet_issued(
    cli: Any, tmp_path: Path
) -> None:
    rows = [
        row(
            invoice_number="A",
            issue_date="2026-01-01",
            due_date="2026-01-31",
            amount="10",
            balance="10",
        ),
        row(
            invoice_number="B",
            issue_date="2026-03-01",
            due_date="2026-03-31",
            amount="20",
            balance="20",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    doc = json.loads(cli("aging", "--as-of", "2026-02-15", "--json").stdout)
    assert doc["currencies"]["USD"]["1-30"] == "10.00"
    assert doc["currencies"]["USD"]["total"] == "10.00"


def test_dso_is_receivables_over_the_last_90_days_of_sales(cli: Any, tmp_path: Path) -> None:
    # Invoiced in the last 90 days: 1000 + 800 = 1800. Open: 600 + 300 = 900. DSO = 900/1800*90 = 45.
    rows = [
        row(
            invoice_number="A",
            issue_date="2026-02-01",
            due_date="2026-03-03",
            amount="1000",
            balance="600",
        ),
        row(
            invoice_number="B",
            issue_date="2026-03-10",
            due_date="2026-04-09",
            amount="800",
            balance="300",
        ),
        row(
            invoice_number="C",
            issue_date="2025-06-01",
            due_date="2025-07-01",
            amount="5000",
            balance="0",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    doc = json.loads(cli("aging", "--json").stdout)
    assert Decimal(doc["dso"]["USD"]) == Decimal("45.0")


def test_an_empty_ledger_ages_to_nothing(cli: Any) -> None:
    doc = json.loads(cli("aging", "--json").stdout)
    assert doc["currencies"] == {}
    assert "nothing open" in cli("aging").stdout


def test_the_table_shows_money_formatted_in_its_currency(cli: Any, tmp_path: Path) -> None:
    rows = [
        row(amount="1234.5", balance="1234.5", due_date=_due(3), issue_date="2026-01-01"),
        row(
            invoice_number="E",
            currency="EUR",
            amount="99",
            balance="99",
            issue_date="2026-03-01",
            due_date="2026-04-01",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    table = cli("aging").stdout
    assert "$1,234.50" in table
    assert "€99.00" in table


def test_a_bad_as_of_date_is_a_user_error(cli: Any) -> None:
    result = cli("aging", "--as-of", "16/03/2026")
    assert result.code == 1
    assert "--as-of '16/03/2026' is not a date; write it as YYYY-MM-DD" in result.stderr


def test_the_reports_invoice_columns_are_the_models() -> None:
    from bot.core.models import Invoice
    from bot.ledger.aging import INVOICES

    mapped = Invoice.__table__.c
    for column in INVOICES.c:
        assert column.name in mapped
        assert type(column.type) is type(mapped[column.name].type), column.name
