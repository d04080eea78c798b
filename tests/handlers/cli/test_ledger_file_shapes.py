"""A ledger file arbot cannot read as CSV UTF-8 with commas: `arbot import-csv` says what the file
is and where, exits 1, and imports nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.models import Invoice
from tests.support.ledger_files import HEADER, row, write

REQUIRED = HEADER[:8]


def _invoices(runtime: Any) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Invoice)) or 0)


def test_a_latin1_byte_after_thousands_of_good_rows_is_named_by_its_row_column_and_offset(
    cli: Any, runtime: Any, tmp_path: Path
) -> None:
    good = [row(invoice_number=f"INV-{n}") for n in range(1, 3001)]  # rows 2 to 3001
    path = write(tmp_path / "ledger.csv", good)
    with path.open("ab") as handle:  # row 3002: a name saved by a Latin-1 spreadsheet
        handle.write(b"C-2,Caf\xe9 Lumen,INV-9,2026-01-15,2026-02-14,USD,10.00,10.00\n")
    offset = path.read_bytes().index(b"\xe9")
    assert offset > 180_000
    result = cli("import-csv", str(path))  # said "byte 355", with no row
    assert result.code == 1
    assert (
        f"row 3002, customer_name: is not UTF-8 text (byte 0xE9 at offset {offset:,}, "
        "'é' in Latin-1 or Windows-1252); save it as CSV UTF-8"
    ) in result.stderr
    assert _invoices(runtime) == 0


def test_a_latin1_byte_in_a_quoted_value_across_lines_is_named_by_the_rows_own_number(
    cli: Any, runtime: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "ledger.csv", [row(customer_name="Ridgeline\nRoofing"), row()])
    with path.open("ab") as handle:  # row 4, though the file's fifth line
        handle.write(b"C-2,Lumen,INV-9,2026-01-15,2026-02-14,\xa3,10.00,10.00\n")
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 4, currency: is not UTF-8 text (byte 0xA3 at offset " in result.stderr
    assert "'£' in Latin-1 or Windows-1252" in result.stderr


def test_a_semicolon_separated_file_is_told_arbot_needs_commas(
    cli: Any, runtime: Any, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        ";".join(REQUIRED) + "\nC-1;Acme;INV-1;2026-01-15;2026-02-14;USD;10,00;10,00\n",
        encoding="utf-8",
    )
    result = cli("import-csv", str(path))  # listed all eight columns as missing
    assert result.code == 1
    assert (
        "row 1 (header): the file seems to use ';' between values; arbot needs commas "
        "(save it as CSV UTF-8, comma-separated)"
    ) in result.stderr
    assert "missing" not in result.stderr
    assert _invoices(runtime) == 0


def test_a_file_of_blank_lines_is_said_to_be_empty(cli: Any, runtime: Any, tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("\n\n   \n\r\n", encoding="utf-8")
    result = cli("import-csv", str(path))  # said "missing required columns"
    assert result.code == 1
    assert f"{path}: the file is empty (only blank lines); expected a header row" in result.stderr
    assert "missing" not in result.stderr


def test_a_blank_first_line_before_the_header_is_named_as_such(
    cli: Any, runtime: Any, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.csv"
    good = write(tmp_path / "good.csv", [row()]).read_text(encoding="utf-8")
    path.write_text("\n" + good, encoding="utf-8")
    result = cli("import-csv", str(path))
    assert result.code == 1
    assert "row 1 (header): is blank; the column names must be on the first row" in result.stderr
