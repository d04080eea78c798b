"""The payments CSV (DESIGN's bank-feed export): read, validate every row, hand back BankPayments.

Columns `date, amount, currency, reference, payer`; extra columns are ignored. A file with any bad
row yields nothing but the full list of problems, each as `row N, column: what is wrong`, counted
as a spreadsheet shows them (the header is row 1). Amounts follow the ledger CSV: a plain decimal
string, no thousands separators or currency symbols, no more decimal places than the currency uses.

Each payment gets a stable external id, a fingerprint of what the bank said (date, amount,
currency, reference, payer) plus how many identical rows came before it in the file: importing the
same file again, or a later export that repeats these rows, gives the same ids, while two identical
rows in one file stay two payments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, NamedTuple

from bot.core.errors import UserError, ValidationFailed
from bot.core.money import minor_units, parse_amount
from integrations.base.payments import BankPayment
from integrations.csv_common import (
    Column,
    RowChecker,
    RowValues,
    at_most,
    currency_code,
    cycles_collected_after,
    excess_places,
    iso_date,
    read_cells,
)

REQUIRED_COLUMNS = ("date", "amount", "currency", "reference", "payer")
TEXT_LIMIT = 256  # Payment.reference and Payment.payer hold this many characters


def _received(text: str) -> Decimal:
    amount = parse_amount(text)
    if amount <= 0:
        raise ValueError(
            f"{amount} is not money received; this file lists incoming payments only (more than 0)"
        )
    return amount


# The columns a row is read by, in the order its problems are listed; a reference or payer may
# be empty.
COLUMNS = (
    Column("date", iso_date),
    Column("amount", _received),
    Column("currency", currency_code),
    Column("reference", at_most(TEXT_LIMIT), required=False, empty=""),
    Column("payer", at_most(TEXT_LIMIT), required=False, empty=""),
)


class PaymentRow(NamedTuple):
    """One row's values, each read by its column of COLUMNS (decimal places are checked after)."""

    received_on: date
    amount: Decimal
    currency: str
    reference: str
    payer: str


def read_payments(path: Path) -> list[BankPayment]:
    """Validate the whole file; raise ValidationFailed listing every problem, or return the rows."""
    with cycles_collected_after():
        return _read(path)


def _read(path: Path) -> list[BankPayment]:
    problems: list[str] = []
    payments: list[BankPayment] = []
    seen: dict[str, int] = {}  # each content: how many rows of it came before
    checker = RowChecker(COLUMNS)
    # The checker's reader of a row's cells by their place in the header, and the header's width:
    # each row is read as a list, without a dict of its columns.
    readers: list[Callable[[int, list[Any], list[str]], RowValues | None]] = []
    width: list[int] = []

    def on_header(header: list[str]) -> None:
        readers.append(checker.by_position(header))
        width.append(len(header))

    for row_number, cells in read_cells(
        path, REQUIRED_COLUMNS, problems, file_kind="payments", on_header=on_header
    ):
        if len(cells) < width[0]:  # a short row's last cells are empty, not missing
            cells.extend([""] * (width[0] - len(cells)))
        values = readers[0](row_number, cells, problems)
        if values is None:
            continue
        row = PaymentRow._make(values.apart)
        excess = excess_places(row_number, "amount", row.amount, row.currency)
        if excess:
            problems.append(excess)
            continue
        content = _content(row)
        occurrence = seen.get(content, 0)
        seen[content] = occurrence + 1
        payments.append(
            BankPayment(
                row=row_number,
                received_on=row.received_on,
                amount=row.amount,
                currency=row.currency,
                reference=row.reference,
                payer=row.payer,
                external_id=_fingerprint(content, occurrence),
            )
        )
    if problems:
        raise ValidationFailed(str(path), problems)
    if not payments:
        raise UserError(f"{path}: no payments found (the file has a header but no rows)")
    return payments


def _content(row: PaymentRow) -> str:
    """What the bank said, written one way: 100.5 and 100.50 USD are the same payment. The text
    is json.dumps of the five fields with ensure_ascii=False, written out: each field quoted as
    json quotes it, without setting up an encoder for each row."""
    amount = row.amount.quantize(_smallest_unit(row.currency))
    fields = [row.received_on.isoformat(), str(amount), row.currency, row.reference, row.payer]
    return "[" + ", ".join(map(encode_basestring, fields)) + "]"


@cache
def _smallest_unit(currency: str) -> Decimal:
    """The currency's smallest unit as a Decimal to quantize to (0.01 USD, 1 JPY)."""
    return Decimal(1).scaleb(-minor_units(currency))


def _fingerprint(content: str, occurrence: int) -> str:
    return hashlib.sha256(f"{content}\n{occurrence}".encode()).hexdigest()
