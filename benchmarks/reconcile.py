"""Match 10,000 bank payments against 100,000 open invoices of 20,000 customers (no database):
build the Matcher, then decide each payment and apply the automatic ones, as an import does.

`python -m benchmarks.reconcile` runs it alone. `ledger_rows` and `payment_rows` build the same
synthetic ledger and bank feed (as CSV rows) for timing the full import with its database writes
(benchmarks/payments.py).
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from benchmarks.books import TODAY, customers_for
from benchmarks.results import Result, print_table
from bot.ledger.sample import sample_rows
from bot.payments.reconcile import Matcher, OpenInvoice
from integrations.csv_payments import REQUIRED_COLUMNS, read_payments

INVOICES = 100_000
CUSTOMERS = 20_000
PAYMENTS = 10_000
# What each payment of the feed is, by weight: which rule should find it, or none. Partial
# payments need a customer with one open invoice, which about 3% of the sample ledger's have.
KINDS = {"reference": 32, "exact_amount": 26, "combination": 20, "partial": 6, "unmatched": 16}
# Extra columns of the generated feed (the reader ignores them): what each row was built to pay.
EXPECTED_COLUMNS = ("kind", "expected_invoices")
SUFFIXES = ("", " LLC", " INC", ", Inc.", " Ltd")

Invoice = tuple[str, Decimal, str]  # number, balance, currency


def ledger_rows(seed: int = 19, invoices: int = INVOICES) -> list[dict[str, str]]:
    """The ledger CSV rows: `invoices` invoices of a fifth as many customers, every one open."""
    rows = sample_rows(TODAY, customers=customers_for(invoices), invoices=invoices, seed=seed)
    for row in rows:
        row["balance"] = row["amount"]
        row.pop("paid_date", None)  # an open invoice has no paid date
    return rows


def payment_rows(
    ledger: list[dict[str, str]], count: int = PAYMENTS, seed: int = 23
) -> list[dict[str, str]]:
    """Payments CSV rows of mixed kinds (KINDS); each pays a customer no other row pays, so the
    order of the rows does not change what should match."""
    rng = random.Random(seed)
    invoices_of: dict[str, list[Invoice]] = defaultdict(list)
    name_of: dict[str, str] = {}
    for row in ledger:
        invoices_of[row["customer_id"]].append(
            (row["invoice_number"], Decimal(row["balance"]), row["currency"])
        )
        name_of[row["customer_id"]] = row["customer_name"]
    queues = _customer_queues(rng, invoices_of)
    paying: set[str] = set()
    rows = []
    for index, kind in enumerate(rng.choices(list(KINDS), weights=list(KINDS.values()), k=count)):
        customer = _next(queues.get(kind, []), paying)
        if customer is None:
            rows.append(_unmatched(rng, index))
            continue
        payer = _as_bank_writes(rng, name_of[customer])
        rows.append(_paying(rng, kind, invoices_of[customer], payer))
    return rows


def _next(queue: list[str], paying: set[str]) -> str | None:
    """The next customer of the queue that no other row pays yet."""
    while queue:
        customer = queue.pop()
        if customer not in paying:
            paying.add(customer)
            return customer
    return None


def _customer_queues(
    rng: random.Random, invoices_of: dict[str, list[Invoice]]
) -> dict[str, list[str]]:
    customers = sorted(invoices_of)
    rng.shuffle(customers)
    counts = {customer: len(invoices_of[customer]) for customer in customers}
    return {
        "reference": [c for c in customers if counts[c] >= 2],
        "exact_amount": [c for c in customers if counts[c] >= 2],
        # every invoice among the 12 a combination is sought among
        "combination": [c for c in customers if 3 <= counts[c] <= 12],
        "partial": [c for c in customers if counts[c] == 1],
    }


def _paying(rng: random.Random, kind: str, invoices: list[Invoice], payer: str) -> dict[str, str]:
    reference = rng.choice(("ACH CREDIT", "WIRE TRANSFER", "Thank you", ""))
    if kind == "reference":
        paid = rng.sample(invoices, k=min(len(invoices), rng.choice((1, 1, 1, 2))))
        reference = _reference(rng, [number for number, _balance, _currency in paid])
        amount = sum((balance for _number, balance, _currency in paid), Decimal(0))
    elif kind == "exact_amount":
        paid = [rng.choice(invoices)]
        amount = paid[0][1]
    elif kind == "combination":
        paid = rng.sample(invoices, k=rng.choice((2, 2, 3)))
        amount = sum((balance for _number, balance, _currency in paid), Decimal(0))
    else:  # partial
        paid = invoices[:1]
        amount = (paid[0][1] * Decimal(rng.randrange(20, 80)) / 100).quantize(Decimal("0.01"))
    expected = ";".join(number for number, _balance, _currency in paid)
    return _row(amount, paid[0][2], reference, payer, kind, expected)


def _reference(rng: random.Random, numbers: list[str]) -> str:
    digits = [number.removeprefix("INV-") for number in numbers]
    form = rng.choice(("{}", "Invoice {}", "inv {}", "#{}", "PAYMENT {} THANK YOU"))
    if rng.random() < 0.5:
        written = " / ".join(numbers)
    else:
        written = ", ".join(f"#{d}" if rng.random() < 0.5 else f"inv {d}" for d in digits)
    return form.format(written)


def _as_bank_writes(rng: random.Random, name: str) -> str:
    written = name.upper() if rng.random() < 0.6 else name
    return written + rng.choice(SUFFIXES)


def _unmatched(rng: random.Random, index: int) -> dict[str, str]:
    amount = Decimal(rng.randrange(100, 5_000_000)) / 100
    return _row(amount, "USD", rng.choice(("", "TRANSFER")), f"Walk-in Payer {index}", "", "")


def _row(
    amount: Decimal, currency: str, reference: str, payer: str, kind: str, expected: str
) -> dict[str, str]:
    return {
        "date": TODAY.isoformat(),
        "amount": f"{amount:.2f}",
        "currency": currency,
        "reference": reference,
        "payer": payer,
        "kind": kind or "unmatched",
        "expected_invoices": expected,
    }


def write_payments(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*REQUIRED_COLUMNS, *EXPECTED_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    return path


def open_invoices(ledger: list[dict[str, str]]) -> list[OpenInvoice]:
    """The ledger rows as the Matcher sees them (ids in row order, customer C-00042 as 42)."""
    return [
        OpenInvoice(
            id=index,
            customer_id=int(row["customer_id"].removeprefix("C-")),
            customer_name=row["customer_name"],
            number=row["invoice_number"],
            currency=row["currency"],
            balance=Decimal(row["balance"]),
            due_date=date.fromisoformat(row["due_date"]),
        )
        for index, row in enumerate(ledger, start=1)
        if Decimal(row["balance"]) > 0
    ]


def run() -> Result:
    """The matcher alone (no database), on the default sizes."""
    ledger = ledger_rows()
    feed = payment_rows(ledger)
    invoices = open_invoices(ledger)
    number_of = {invoice.id: invoice.number for invoice in invoices}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        payments = read_payments(write_payments(Path(folder) / "feed.csv", feed))
        read_seconds = time.perf_counter() - started

    started = time.perf_counter()
    matcher = Matcher(invoices)
    built_seconds = time.perf_counter() - started
    outcomes: Counter[str] = Counter()
    as_built = 0
    for bank_payment, row in zip(payments, feed, strict=True):
        decision = matcher.decide(bank_payment)
        match = decision.auto
        if match is None:
            outcomes["review" if decision.matches else "no candidate"] += 1
            continue
        matcher.apply(match)
        outcomes[match.rule] += 1
        paid = ";".join(sorted(number_of[a.invoice_id] for a in match.allocations))
        as_built += match.rule == row["kind"] and paid == ";".join(
            sorted(row["expected_invoices"].split(";"))
        )
    seconds = time.perf_counter() - started + built_seconds

    size = f"{len(payments):,} payments, {len(invoices):,} open invoices, {CUSTOMERS:,} customers"
    shown = ", ".join(f"{outcome} {n:,}" for outcome, n in outcomes.most_common())
    built = Counter(row["kind"] for row in feed)
    note = (
        f"read the payments CSV in {read_seconds:.2f} s, built the matcher in "
        f"{built_seconds:.2f} s. Decisions: {shown}; {as_built:,} automatic matches are the ones "
        f"the feed was built to pay (built: "
        f"{', '.join(f'{kind} {n:,}' for kind, n in built.most_common())})."
    )
    return Result(
        "reconcile: build the matcher, decide, apply", "", size, seconds, target=5, note=note
    )


def main() -> None:
    result = run()
    ok = print_table("arbot benchmark: bank-feed reconciliation (no database)", [result], [])
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
