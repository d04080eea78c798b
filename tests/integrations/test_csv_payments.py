"""The bank-feed payments CSV: what a good file gives, every bad row named by file, row and column,
and external ids that stay the same when the same payments are imported again."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import UserError, ValidationFailed
from integrations.csv_payments import read_payments

HEADER = ["date", "amount", "currency", "reference", "payer"]


def good(**fields: str) -> dict[str, str]:
    base = {
        "date": "2026-03-16",
        "amount": "1200.00",
        "currency": "USD",
        "reference": "INV-1001",
        "payer": "Ridgeline Roofing LLC",
    }
    base.update(fields)
    return base


def write(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_good_file_gives_one_payment_per_row_numbered_as_a_spreadsheet_shows_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(
        " Date ,AMOUNT,currency,reference,payer,balance after\n"
        "2026-03-16,1200.00,usd,  INV-1001 ,Ridgeline Roofing LLC,5000.00\n"
        ",,,,,\n"
        "2026-03-17,15000,JPY,,Sakura KK,0\n"
        "2026-03-18,12.345,KWD,wire 88,,\n",
        encoding="utf-8",
    )
    first, second, third = read_payments(path)
    assert (first.row, second.row, third.row) == (2, 4, 5)
    assert first.received_on == date(2026, 3, 16)
    assert (first.amount, first.currency) == (Decimal("1200.00"), "USD")
    assert (first.reference, first.payer) == ("INV-1001", "Ridgeline Roofing LLC")
    assert (second.amount, second.currency, second.reference) == (Decimal(15000), "JPY", "")
    assert (third.amount, third.currency, third.payer) == (Decimal("12.345"), "KWD", "")
    assert len({first.external_id, second.external_id, third.external_id}) == 3


BAD_FIELDS = [
    ("date", "16/03/2026", "row 3, date: '16/03/2026' is not an ISO date (YYYY-MM-DD"),
    ("date", "2026-02-30", "row 3, date: '2026-02-30' is not a real date"),
    ("date", "", "row 3, date: is required but empty"),
    ("amount", "-50.00", "row 3, amount: -50.00 is not money received"),
    ("amount", "0.00", "row 3, amount: 0.00 is not money received"),
    ("amount", "1,200.00", "row 3, amount: '1,200.00' is not a decimal amount"),
    ("amount", "$1200", "row 3, amount: '$1200' is not a decimal amount"),
    ("amount", "", "row 3, amount: is required but empty"),
    ("amount", "1200.005", "row 3, amount: 1200.005 has more decimal places than USD uses (2)"),
    ("currency", "DOLLARS", "row 3, currency: 'DOLLARS' is not an ISO 4217 currency code"),
    ("currency", "", "row 3, currency: is required but empty"),
    ("reference", "R" * 257, "row 3, reference: is 257 characters long; at most 256 fit"),
    ("payer", "P" * 300, "row 3, payer: is 300 characters long; at most 256 fit"),
    ("date", "9999-12-31", "row 3, date: 9999-12-31 is outside the dates arbot accepts"),
    ("reference", "INV\x00-1", "row 3, reference: contains a control character (U+0000"),
    ("payer", "Acme \u202eDTL", "row 3, payer: contains a control character (U+202E"),
]


@pytest.mark.parametrize(
    ("column", "value", "expected"), BAD_FIELDS, ids=[f"{c}={v[:12]!r}" for c, v, _ in BAD_FIELDS]
)
def test_a_bad_value_refuses_the_whole_file_naming_file_row_and_column(
    tmp_path: Path, column: str, value: str, expected: str
) -> None:
    path = write(tmp_path / "feed.csv", [good(), good(**{column: value})])
    with pytest.raises(ValidationFailed) as refused:
        read_payments(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: 1 problem, nothing was imported")
    assert expected in message


def test_too_many_decimals_are_judged_by_the_rows_own_currency(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", [good(amount="1500.5", currency="JPY")])
    with pytest.raises(ValidationFailed, match=r"row 2, amount: 1500\.5 has more decimal places"):
        read_payments(path)


def test_every_bad_row_is_listed_not_only_the_first(tmp_path: Path) -> None:
    rows = [good(date="yesterday"), good(), good(amount="-1", currency="EURO")]
    with pytest.raises(ValidationFailed) as refused:
        read_payments(write(tmp_path / "feed.csv", rows))
    assert refused.value.problems == [
        "row 2, date: 'yesterday' is not an ISO date (YYYY-MM-DD, e.g. 2026-03-16)",
        "row 4, amount: -1 is not money received; this file lists incoming payments only "
        "(more than 0)",
        "row 4, currency: 'EURO' is not an ISO 4217 currency code (e.g. USD, EUR, GBP)",
    ]


def test_a_value_longer_than_the_csv_module_reads_is_named_by_its_row(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", [good(), good(date="yesterday")])
    with path.open("a", encoding="utf-8") as handle:  # row 4 opens a quote it never closes
        handle.write('2026-03-16,5.00,USD,"wire\n' + "x" * 140_000 + "\n")
    with pytest.raises(ValidationFailed) as refused:
        read_payments(path)
    assert refused.value.problems == [
        "row 3, date: 'yesterday' is not an ISO date (YYYY-MM-DD, e.g. 2026-03-16)",
        "row 4: a value is longer than 131,072 characters, far more than any ledger value; look "
        "for a quote that opens on this row and never closes (the rows after it were not read)",
    ]


def test_a_missing_column_is_named_with_the_columns_a_payments_file_has(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", [good()], header=["date", "amount", "currency"])
    with pytest.raises(UserError) as refused:
        read_payments(path)
    assert str(refused.value) == (
        f"{path}: row 1 (header): missing required columns reference, payer "
        "(a payments file has date, amount, currency, reference, payer)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty; expected a header row"),
        (b"date,amount,currency,reference,payer\n", "no payments found"),
        (b"date,amount,currency,reference,payer,date\n", "column date appears twice"),
        (b"date,amount,currency,reference,payer\n2026-03-16,5,USD,x,y,z\n", "row 2: 6 values"),
        (b"date,amount,currency,reference,payer\n2026-03-16,5,USD,x,M\xfcller\n", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_payments_list_says_why(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=expected):
        read_payments(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_payments(tmp_path / "nowhere.csv")


def test_a_short_row_leaves_reference_and_payer_empty(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("date,amount,currency,reference,payer\n2026-03-16,5.00,USD\n", "utf-8")
    [only] = read_payments(path)
    assert (only.reference, only.payer) == ("", "")


def test_a_short_row_without_a_required_cell_says_it_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("date,amount,currency,reference,payer\n2026-03-16,5.00\n", "utf-8")
    with pytest.raises(ValidationFailed) as refused:
        read_payments(path)
    assert refused.value.problems == ["row 2, currency: is required but empty"]


@pytest.mark.parametrize(
    ("amount", "currency", "reference", "payer", "written"),
    [
        ("1200.5", "USD", "INV-1001", "Ridgeline Roofing LLC", "1200.50"),
        ("5000", "JPY", "", "", "5000"),
        ("12.5", "KWD", 'Nº "7" \\ 2/3', "Müller & Söhne GmbH 🙂", "12.500"),
    ],
)
def test_an_external_id_is_the_digest_of_the_json_of_what_the_bank_said_and_its_occurrence(
    tmp_path: Path, amount: str, currency: str, reference: str, payer: str, written: str
) -> None:
    """The ids of payments imported before must not change: the file's same rows are then
    recognised however the reading is done."""
    fields = {"amount": amount, "currency": currency, "reference": reference, "payer": payer}
    first, second = read_payments(write(tmp_path / "feed.csv", [good(**fields), good(**fields)]))
    content = json.dumps(["2026-03-16", written, currency, reference, payer], ensure_ascii=False)
    assert [first.external_id, second.external_id] == [
        hashlib.sha256(f"{content}\n{n}".encode()).hexdigest() for n in (0, 1)
    ]


def test_reading_the_same_file_twice_gives_the_same_external_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", [good(), good(reference="INV-1002"), good(payer="Other")])
    assert [p.external_id for p in read_payments(path)] == [
        p.external_id for p in read_payments(path)
    ]


def test_two_identical_rows_are_two_payments_and_keep_their_ids_in_a_later_export(
    tmp_path: Path,
) -> None:
    march = read_payments(write(tmp_path / "march.csv", [good(), good()]))
    assert march[0].external_id != march[1].external_id
    later = read_payments(
        write(tmp_path / "later.csv", [good(), good(), good(), good(date="2026-03-20")])
    )
    assert [p.external_id for p in later[:2]] == [p.external_id for p in march]
    assert len({p.external_id for p in later}) == 4


def test_the_same_amount_written_two_ways_is_the_same_payment(tmp_path: Path) -> None:
    one = read_payments(write(tmp_path / "a.csv", [good(amount="100.5")]))
    other = read_payments(write(tmp_path / "b.csv", [good(amount="100.50")]))
    assert one[0].external_id == other[0].external_id


@pytest.mark.parametrize(
    "change",
    [
        {"date": "2026-03-17"},
        {"amount": "1200.01"},
        {"currency": "CAD"},
        {"reference": "INV-1001 "},  # spaces are trimmed: the same payment
        {"reference": "INV-1002"},
        {"payer": "Ridgeline Roofing"},
    ],
)
def test_the_external_id_follows_what_the_bank_said(tmp_path: Path, change: dict[str, str]) -> None:
    [before] = read_payments(write(tmp_path / "a.csv", [good()]))
    [after] = read_payments(write(tmp_path / "b.csv", [good(**change)]))
    same = change == {"reference": "INV-1001 "}
    assert (before.external_id == after.external_id) is same


rows = st.lists(
    st.builds(
        good,
        amount=st.sampled_from(["10.00", "20.00"]),
        reference=st.sampled_from(["", "INV-1"]),
        payer=st.sampled_from(["A", "B"]),
    ),
    min_size=1,
    max_size=10,
)


@given(rows, st.randoms(use_true_random=False))
def test_reordering_a_file_keeps_the_same_set_of_distinct_external_ids(
    tmp_path_factory: pytest.TempPathFactory, feed: list[dict[str, str]], shuffler: random.Random
) -> None:
    folder = tmp_path_factory.mktemp("feeds")
    shuffled = list(feed)
    shuffler.shuffle(shuffled)
    ids = [p.external_id for p in read_payments(write(folder / "a.csv", feed))]
    reordered = [p.external_id for p in read_payments(write(folder / "b.csv", shuffled))]
    assert len(set(ids)) == len(feed)
    assert sorted(ids) == sorted(reordered)
