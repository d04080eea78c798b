"""What the ledger CSV and the payments CSV read the same way: opening the file, the header and the
rows (numbered as a spreadsheet shows them: the header is row 1), the field checks they share, and
how a row's validation errors read (`row N, column: what is wrong`). Every cell is held to what any
ledger record may hold (integrations.base.ledger): no control characters or bidirectional
overrides, and dates within the years arbot accepts.

The email and phone checks also serve the accounting sources, which meet the same addresses and
numbers in their contact records.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError

from bot.core.errors import UserError, ValidationFailed
from bot.core.money import is_currency, minor_units
from integrations.base.ledger import date_problem, text_problem

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- Fields (pydantic BeforeValidators: a ValueError's text becomes the problem) -----------------


def cell_text(value: Any) -> str:
    """A cell's text, trimmed; "" for a cell the row does not have. A control character or a
    bidirectional override anywhere in it is refused (see integrations.base.ledger)."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def required_text(value: Any) -> str:
    text = cell_text(value)
    if not text:
        raise ValueError("is required but empty")
    return text


def within_length(text: str, limit: int) -> str:
    if len(text) > limit:
        raise ValueError(f"is {len(text)} characters long; at most {limit} fit")
    return text


def iso_date(value: Any) -> date:
    text = required_text(value)
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD, e.g. 2026-03-16)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None
    problem = date_problem(day)
    if problem:
        raise ValueError(problem)
    return day


def currency_code(value: Any) -> str:
    text = required_text(value).upper()
    if not is_currency(text):
        raise ValueError(f"{text!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return text


@lru_cache(maxsize=65536)
def normalise_email(text: str) -> str:
    """The address in its normalised form; ValueError saying why when it is not one."""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not a valid email address: {exc}") from None


@lru_cache(maxsize=65536)
def normalise_phone(text: str, region: str) -> str:
    """The number in E.164, read as dialled in `region` unless it starts with +; ValueError
    saying why when it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number (write it as +15551234567)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Rows --------------------------------------------------------------------------------------


def describe_errors(row_number: int, exc: ValidationError) -> list[str]:
    """A row's validation errors as `row N, column: what is wrong`, one a column."""
    described = []
    for error in exc.errors():
        column = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required but the column is empty"
        described.append(f"row {row_number}, {column}: {message}")
    return described


def excess_places(row_number: int, column: str, value: Decimal, currency: str) -> str | None:
    """The problem with an amount written with more decimal places than its currency uses."""
    places = minor_units(currency)
    if -value.as_tuple().exponent > places:  # type: ignore[operator]
        return (
            f"row {row_number}, {column}: {value} has more decimal places than "
            f"{currency} uses ({places})"
        )
    return None


def open_csv(path: Path) -> Any:
    """The file opened for the csv module (a UTF-8 byte order mark is skipped)."""
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a CSV file") from None
    except PermissionError:
        raise UserError(f"{path}: cannot be read (permission denied)") from None


def read_rows(
    path: Path,
    required_columns: Sequence[str],
    problems: list[str],
    *,
    file_kind: str | None = None,
    fill_short_rows: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, column -> value) for each row that is not blank, columns named by the header
    (trimmed, lower case). A header that lacks a required column or repeats one, or a file that
    is not UTF-8 CSV, raises UserError (naming the row the csv module stopped at, with the
    problems found before it); a row with more values than the header has columns is
    added to `problems` and skipped. A row with fewer values lacks the last columns, or with
    `fill_short_rows` has them empty. `file_kind` ("payments") lists the required columns in the
    missing-column message."""
    index = 0  # the row last read
    with open_csv(path) as handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: the file is empty; expected a header row")
            index = 1
            columns = _checked_header(path, header, required_columns, file_kind)
            for index, values in enumerate(reader, start=2):
                if not any(value.strip() for value in values):
                    continue  # blank line
                if len(values) > len(columns):
                    problems.append(
                        f"row {index}: {len(values)} values but the header has {len(columns)} columns"
                    )
                    continue
                if fill_short_rows:
                    values = values + [""] * (len(columns) - len(values))
                yield index, dict(zip(columns, values, strict=False))
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path}: is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise ValidationFailed(
                str(path), [*problems, _unreadable_row(index + 1, exc)]
            ) from None


def _unreadable_row(row_number: int, exc: csv.Error) -> str:
    """Why the csv module stopped at `row_number`; the rows after it are not read."""
    limit = csv.field_size_limit()
    if f"({limit})" in str(exc):
        return (
            f"row {row_number}: a value is longer than {limit:,} characters, far more than any "
            "ledger value; look for a quote that opens on this row and never closes "
            "(the rows after it were not read)"
        )
    return f"row {row_number}: not readable as CSV: {exc} (the rows after it were not read)"


def _checked_header(
    path: Path, header: list[str], required_columns: Sequence[str], file_kind: str | None
) -> list[str]:
    columns = [name.strip().lower() for name in header]
    missing = [name for name in required_columns if name not in columns]
    if missing:
        listed = f" (a {file_kind} file has {', '.join(required_columns)})" if file_kind else ""
        raise UserError(
            f"{path}: row 1 (header): missing required column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}{listed}"
        )
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        raise UserError(f"{path}: row 1 (header): column {', '.join(repeated)} appears twice")
    return columns
