"""How well arbot forecasts payment dates: a time split (learn from what was paid before a date,
predict the invoices open on it), mean absolute error in days against two baselines: "paid on the
due date" and "the customer's mean days late so far" (a customer with no payment yet: the due
date). Both baselines are given the as-of day as a floor (a date already past cannot be the
answer for an invoice still open), which only makes them stronger.

Two ledgers: a synthetic one (`synthetic_history`: customers of steady, drifting and erratic habits,
some invoices disputed) and, when ../shared/corpus/ is there, the public IBM "Finance Factoring:
late payment histories" sample (2,466 invoices of 100 customers, 2012-2013). Goal: at least 15%
lower error than the better baseline."""

from __future__ import annotations

import csv
import random
import statistics
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from benchmarks.options import Options
from benchmarks.results import Result
from bot.forecasting.model import PaymentRecord, fit

CORPUS = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/corpus/payment-histories/ibm-late-payment-histories.csv"
)
GOAL = 0.15  # at least this much lower error than the better baseline
DAYS = "days"


@dataclass(frozen=True, slots=True)
class Invoice:
    customer: Hashable
    issue_date: date
    due_date: date
    paid_on: date
    disputed: bool = False


@dataclass(frozen=True, slots=True)
class Errors:
    invoices: int
    model: float
    due_date: float
    customer_mean: float

    @property
    def better_baseline(self) -> float:
        return min(self.due_date, self.customer_mean)

    @property
    def gain(self) -> float:
        """How much lower the model's error is than the better baseline's (0.2 = 20% lower)."""
        return 1.0 - self.model / self.better_baseline if self.better_baseline else 0.0


def evaluate(invoices: list[Invoice], as_of: date, disputes: bool = False) -> Errors:
    """Learn from what was known on `as_of`; predict each invoice issued before it and unpaid.
    With `disputes`, the model is told which invoices are disputed (the baselines never are)."""
    known = [i for i in invoices if i.issue_date < as_of]

    def disputed(i: Invoice) -> bool:
        # Known for what was paid before `as_of`, and for what was past due by then; an invoice
        # not yet due is taken as not disputed (a dispute may come later).
        return disputes and i.disputed and (i.paid_on < as_of or i.due_date <= as_of)

    records = [
        PaymentRecord(i.customer, i.due_date, i.paid_on if i.paid_on < as_of else None, disputed(i))
        for i in known
    ]
    model = fit(records, as_of)
    history: dict[Hashable, list[int]] = defaultdict(list)
    for i in known:
        if i.paid_on < as_of:
            history[i.customer].append((i.paid_on - i.due_date).days)
    model_errors, due_errors, mean_errors = [], [], []
    for i in known:
        if i.paid_on < as_of:
            continue
        predicted = model.predict(i.customer, i.due_date, disputed(i)).expected_pay_date
        model_errors.append(abs((predicted - i.paid_on).days))
        due_errors.append(abs((max(i.due_date, as_of) - i.paid_on).days))
        late = history.get(i.customer)
        mean_late = round(statistics.fmean(late)) if late else 0
        guess = max(i.due_date + timedelta(days=mean_late), as_of)
        mean_errors.append(abs((guess - i.paid_on).days))
    if not model_errors:
        return Errors(0, 0.0, 0.0, 0.0)
    return Errors(
        len(model_errors),
        statistics.fmean(model_errors),
        statistics.fmean(due_errors),
        statistics.fmean(mean_errors),
    )


def synthetic_history(customers: int = 400, seed: int = 7) -> list[Invoice]:
    """Two years of net-30 invoices. Each customer has a habit: most pay around a lateness of
    their own with some noise (prompt, a week or two late, a month late); some drift later over
    the two years; some are erratic. One invoice in twenty is disputed and paid 30-90 days later
    than the habit. These are assumptions for a test bench, not measurements."""
    draw = random.Random(seed)
    start = date(2024, 1, 1)
    invoices: list[Invoice] = []
    for n in range(customers):
        kind = draw.random()
        if kind < 0.35:
            habit, noise = draw.uniform(-5, 3), 2.0
        elif kind < 0.7:
            habit, noise = draw.uniform(5, 20), 4.0
        elif kind < 0.85:
            habit, noise = draw.uniform(25, 50), 8.0
        else:
            habit, noise = draw.uniform(0, 30), 15.0
        drift = draw.uniform(5, 25) / 365 if draw.random() < 0.2 else 0.0
        every = draw.choice((7, 14, 30, 30, 30, 45))
        issue = start + timedelta(days=draw.randrange(every))
        while issue < start + timedelta(days=730):
            due = issue + timedelta(days=30)
            late = habit + drift * (issue - start).days + draw.gauss(0, noise)
            disputed = draw.random() < 0.05
            if disputed:
                late += draw.uniform(30, 90)
            paid = due + timedelta(days=round(late))
            invoices.append(Invoice(f"C{n}", issue, due, max(paid, issue), disputed))
            issue += timedelta(days=every)
    return invoices


def ibm_history(path: Path = CORPUS) -> list[Invoice]:
    """The corpus file's invoices: customerID, InvoiceDate, DueDate, SettledDate (dd/mm/yyyy)."""

    def day(text: str) -> date:
        return datetime.strptime(text, "%d/%m/%Y").date()

    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Invoice(
                row["customerID"],
                day(row["InvoiceDate"]),
                day(row["DueDate"]),
                day(row["SettledDate"]),
                row["Disputed"] == "Yes",
            )
            for row in csv.DictReader(handle)
        ]


def _line(name: str, errors: Errors, as_of: date) -> str:
    return (
        f"{name}: {errors.invoices} invoices open on {as_of.isoformat()}; mean absolute error "
        f"{errors.model:.1f} days against {errors.due_date:.1f} (paid on the due date) and "
        f"{errors.customer_mean:.1f} (the customer's mean days late so far): "
        f"{abs(100 * errors.gain):.0f}% {'lower' if errors.gain >= 0 else 'HIGHER'} than the "
        f"better baseline (goal: {100 * GOAL:.0f}% lower)"
    )


def _results(name: str, size: str, errors: Errors) -> list[Result]:
    note = f"{100 * errors.gain:.0f}% below the better baseline"
    return [
        Result(
            f"{name}: forecast error",
            "",
            size,
            errors.model,
            unit=DAYS,
            floor=errors.better_baseline,
            floor_name="better baseline",
            ratio_target=1.0 - GOAL,
            note=note,
        )
    ]


KNOWN_ONCE_PAST_DUE = ", disputes known once past due"


def _measure(
    name: str,
    invoices: list[Invoice],
    as_of: date,
    others: tuple[date, ...],
    known: str = KNOWN_ONCE_PAST_DUE,
) -> Errors:
    """Print the figures at `as_of` (and at `others`), without and with the dispute flags (the
    latter's lines named by `known`, which says what they assume)."""
    for disputes in (False, True):
        told = known if disputes else ""
        for day in others:
            print(
                _line(f"{name} at {day.isoformat()}{told}", evaluate(invoices, day, disputes), day)
            )
    errors = evaluate(invoices, as_of)
    print(_line(f"{name} at {as_of.isoformat()}", errors, as_of), flush=True)
    print(
        _line(
            f"{name} at {as_of.isoformat()}{known}",
            evaluate(invoices, as_of, True),
            as_of,
        )
    )
    return errors


def run(options: Options) -> list[Result]:
    synthetic = synthetic_history()
    errors = _measure(
        "forecast, synthetic ledger",
        synthetic,
        date(2025, 7, 1),
        (date(2025, 4, 1), date(2025, 10, 1)),
    )
    results = _results("synthetic ledger", f"{len(synthetic):,} invoices", errors)
    if not CORPUS.is_file():
        print(f"forecast on the IBM late-payment history: skipped, the corpus is absent ({CORPUS})")
        return results
    real = ibm_history()
    errors = _measure(
        "forecast, IBM late-payment history",
        real,
        date(2013, 7, 1),
        (date(2013, 4, 1), date(2013, 10, 1)),
        # The file says which invoices were disputed, never when: not a figure to claim the goal
        ", Disputed assumed known from the due date (the file dates no dispute; not for the goal)",
    )
    return results + _results("IBM late-payment history", f"{len(real):,} invoices", errors)
