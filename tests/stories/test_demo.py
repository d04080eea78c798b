"""The embedded default: `arbot demo` and the bundled sample ledger, and the CLI's contract."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.ledger.sample import sample_rows, write_csv
from integrations.csv_ledger import read_ledger_csv

TODAY = date(2026, 3, 16)


def test_the_sample_ledger_is_believable_and_valid(tmp_path: Path) -> None:
    rows = sample_rows(TODAY)
    batch = read_ledger_csv(write_csv(tmp_path / "s.csv", rows))
    assert 200 <= len(batch.invoices) <= 600
    per_customer = Counter(r["customer_id"] for r in rows)
    assert sum(1 for n in per_customer.values() if n > 1) >= 20  # multi-invoice customers
    assert {r["tier"] for r in rows} == {"strategic", "standard", "transactional"}
    assert {r["currency"] for r in rows} == {"USD", "EUR"}
    assert len({r["customer_id"] for r in rows if r["currency"] == "EUR"}) == 1
    tags = {t for r in rows for t in r["tags"].split(";")}
    assert {"contractor", "clinic", "agency", "b2b"} <= tags
    due = [date.fromisoformat(r["due_date"]) for r in rows]
    assert any(d > TODAY for d in due) and any((TODAY - d).days > 90 for d in due)


def test_the_sample_ledger_moves_with_today() -> None:
    later = date(2027, 1, 4)
    shift = later - TODAY
    for a, b in zip(sample_rows(TODAY), sample_rows(later), strict=True):
        assert date.fromisoformat(b["due_date"]) - date.fromisoformat(a["due_date"]) == shift
        assert a["balance"] == b["balance"]


@pytest.mark.slow  # the whole demo, twice
def test_demo_imports_the_sample_and_prints_aging_and_what_is_overdue(
    cli: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    result = cli("demo", "--dir", str(folder))
    assert result.code == 0, result.stderr
    assert (folder / "arbot.db").exists()
    assert (folder / "sample-ledger.csv").exists()
    for text in (
        "Sample ledger for 2026-03-16",
        "invoices added",
        "Receivables aging as of 2026-03-16",
        "EUR",
        "USD",
        "Overdue invoices",
        "Days late",
    ):
        assert text in result.stdout
    again = cli("demo", "--dir", str(folder))  # runs again from scratch
    assert again.code == 0
    assert "invoices added" in again.stdout


def test_demo_will_not_delete_a_folder_that_is_not_its_own(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "taxes.xlsx").write_text("precious")
    (folder / "arbot.db").write_text("a real ledger, not the demo's")
    result = cli("demo", "--dir", str(folder))
    assert result.code == 1
    assert "is not an arbot demo folder" in result.stderr
    assert (folder / "taxes.xlsx").read_text() == "precious"


@pytest.mark.parametrize("args", [["status"], ["aging", "--bogus"], ["no-such-command"]])
def test_bad_usage_exits_with_code_2(cli: Any, args: list[str]) -> None:
    assert cli(*args).code == 2


@pytest.mark.slow  # an `arbot` process
def test_the_installed_console_script_answers_help() -> None:
    script = Path(sys.executable).parent / "arbot"
    result = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0
    for command in ("demo", "import-csv", "aging", "status", "db"):
        assert command in result.stdout
