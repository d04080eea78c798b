"""The quick checks that pass a row's invoice when its customer's cells repeat an earlier row's
(dates in order, a balance within its amount, amounts to the currency's places, a paid date that
fits) say what the full checks of a row say: over generated rows, good and bad, each the first
row of its customer or after a good one, a file's reading lists the problems the full checks give
for each row's values, and a file whose rows all pass gives each invoice."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.core.errors import ValidationFailed
from integrations.csv_common import RowChecker
from integrations.csv_ledger import (
    _CUSTOMER_CELLS,
    COLUMNS,
    LedgerRow,
    PaidDays,
    _check_row,
    read_ledger_csv,
)
from tests.support.ledger_files import HEADER, row, write

TODAY = date(2026, 3, 16)
ZONE = "America/Chicago"
# currencies with their decimal places
CURRENCIES = {"JPY": 0, "USD": 2, "KWD": 3}
CHECKER = RowChecker(COLUMNS, together=_CUSTOMER_CELLS)


def _amount(rng: random.Random, places: int) -> str:
    """An amount written to `places` decimal places, now and then to up to 4."""
    whole = rng.choice(("0", "1", "7", "1200", "99999"))
    places = rng.choice((places, places, places, rng.randint(0, 4)))
    return whole if places == 0 else f"{whole}.{rng.randint(0, 10**places - 1):0{places}d}"


def _invoice_cells(rng: random.Random) -> dict[str, str]:
    """An invoice's cells each of which reads (its row's problems, if any, are between them)."""
    issue = date(2026, 1, 15) + timedelta(days=rng.randint(-3, 3))
    due = issue + timedelta(days=rng.choice((-1, 0, 30, 30, 30)))
    currency = rng.choice(list(CURRENCIES))
    amount = _amount(rng, CURRENCIES[currency])
    balance = rng.choice((amount, amount, amount, "0", "0.00", _amount(rng, 2)))
    paid = rng.choice(
        (
            *[""] * 6,
            (issue - timedelta(days=1)).isoformat(),
            issue.isoformat(),
            TODAY.isoformat(),
            (TODAY + timedelta(days=1)).isoformat(),
        )
    )
    return {
        "issue_date": issue.isoformat(),
        "due_date": due.isoformat(),
        "currency": currency,
        "amount": amount,
        "balance": balance,
        "paid_date": paid,
    }


def _full_checks(row_number: int, cells: dict[str, str]) -> list[str]:
    """What the full checks of a row say of its values (its contact has nothing to say: a phone
    number with consent to texts)."""
    values = CHECKER.read(row_number, cells, [])
    assert values is not None  # each cell reads
    together, apart = values
    row = LedgerRow(*together, *apart)
    return _check_row(row_number, row, "US", PaidDays(TODAY, ZONE))


def _problems(path: Path) -> list[str]:
    try:
        read_ledger_csv(path, today=TODAY, timezone=ZONE)
    except ValidationFailed as failed:
        return failed.problems
    return []


@pytest.mark.parametrize("seed", range(4))
def test_the_quick_invoice_checks_say_what_the_full_checks_say(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    header = [*HEADER, "paid_date"]
    generated = [_invoice_cells(rng) for _ in range(400)]
    # each row its customer's first
    firsts = [
        row(customer_id=f"C-{n}", invoice_number=f"I-{n}", **cells)
        for n, cells in enumerate(generated)
    ]
    checked = [_full_checks(n, cells) for n, cells in enumerate(firsts, start=2)]
    assert 100 < sum(map(bool, checked)) < 300  # good rows and bad ones, of each kind
    expected = [p for problems in checked for p in problems]
    for kind in (
        "due_date: ",
        "has more decimal places",
        "is more than the amount",
        "paid_date: ",
        "is given but the balance",
        "is after today",
    ):
        assert any(kind in problem for problem in expected), kind
    assert _problems(write(tmp_path / "firsts.csv", firsts, header)) == expected
    # each row after a good first row of its customer
    seconds = [
        line
        for n, cells in enumerate(firsts)
        for line in (row(customer_id=f"C-{n}", invoice_number=f"F-{n}"), cells)
    ]
    expected = [p for n, cells in enumerate(seconds, start=2) for p in _full_checks(n, cells)]
    assert _problems(write(tmp_path / "seconds.csv", seconds, header)) == expected


def test_a_file_whose_invoices_pass_gives_each_of_them(tmp_path: Path) -> None:
    rng = random.Random(7)
    cells = [_invoice_cells(rng) for _ in range(600)]
    good = [c for n, c in enumerate(cells) if not _full_checks(n + 2, row(**c))]
    rows = [
        row(customer_id=f"C-{n % 50}", invoice_number=f"I-{n}", **c) for n, c in enumerate(good)
    ]
    batch = read_ledger_csv(
        write(tmp_path / "good.csv", rows, [*HEADER, "paid_date"]), today=TODAY, timezone=ZONE
    )
    assert [(i.number, str(i.total), str(i.balance)) for i in batch.invoices] == [
        (r["invoice_number"], r["amount"], r["balance"]) for r in rows
    ]
