"""`arbot forecast`, `/ar forecast` and the weekly review's chart: for every open invoice when it
is expected to be paid, and the cash expected week by week, per currency.

A week's expected cash in a currency is the sum over the open invoices in that currency of the
balance times the probability that the invoice is paid in that week (weeks start on Monday, the
first being the week of the as-of day, counted from that day). Mass the history never saw paid
falls in no week, so the weeks add up to less than the open balance: honestly so."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.bulk_rows import read_rows
from bot.core.errors import UserError
from bot.core.models import Customer, Invoice
from bot.core.money import decimal_str
from bot.forecasting.history import learn
from bot.forecasting.model import PaymentRecord, Prediction

INV: Any = Invoice.__table__.c
CUS: Any = Customer.__table__.c
MAX_WEEKS = 104
SHARE_PLACES = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class InvoiceForecast:
    number: str
    customer: str  # the customer's id in the ledger
    customer_name: str
    currency: str
    balance: Decimal
    due_date: date
    prediction: Prediction

    def as_json(self) -> dict[str, Any]:
        p = self.prediction
        return {
            "number": self.number,
            "customer": self.customer,
            "due_date": self.due_date.isoformat(),
            "expected_pay_date": p.expected_pay_date.isoformat(),
            "p_paid_by_due_plus_30": round(p.p_paid_by_due_plus_30, 3),
            "earliest_likely": p.low.isoformat(),
            "latest_likely": p.high.isoformat() if p.high else None,
            "basis": p.basis,
            "currency": self.currency,
            "balance": decimal_str(self.balance, self.currency),
        }


@dataclass(frozen=True, slots=True)
class Week:
    week_start: date
    expected: dict[str, Decimal]  # currency -> expected cash in

    @property
    def last_day(self) -> date:
        return self.week_start + timedelta(days=6)

    def as_json(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "expected": {c: decimal_str(v, c) for c, v in sorted(self.expected.items())},
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    as_of: date
    invoices: list[InvoiceForecast]
    weeks: list[Week]
    learned_from: int = 0  # paid invoices the model learned from
    paid_since: int = 0  # paid only on or after the as-of day: nothing learned from them yet

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "invoices": [i.as_json() for i in self.invoices],
            "weeks": [w.as_json() for w in self.weeks],
        }

    @property
    def nothing_learned(self) -> str | None:
        """What to say when no invoice was ever paid: the weeks are then empty, not a forecast."""
        if self.learned_from or not self.invoices:
            return None
        if self.paid_since:
            # Paid, but on or after the as-of day as far as arbot knows: a ledger file without
            # paid_date says only that an invoice is paid, and arbot then dates it the day it saw it.
            many = self.paid_since != 1
            return (
                f"{self.paid_since:,} paid invoice{'s' if many else ''} of this ledger "
                f"{'were' if many else 'was'} paid only on or after {self.as_of.isoformat()} as far "
                "as arbot knows, so there is no payment history before that day to learn from and "
                "no cash is placed in any week: give the ledger file's paid_date column (the day "
                "each paid invoice was paid), import the bank's payments (arbot import-payments) "
                "or sync a source that reports them."
            )
        return (
            "No invoice of this ledger has been paid yet, so there is nothing to learn from and no "
            "cash is placed in any week: import the bank's payments (arbot import-payments), sync "
            "a source that reports them, or give the ledger file's paid_date column."
        )

    def open_balance(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for invoice in self.invoices:
            totals[invoice.currency] += invoice.balance
        return dict(totals)


def week_starts(as_of: date, weeks: int) -> list[date]:
    monday = as_of - timedelta(days=as_of.weekday())
    return [monday + timedelta(weeks=n) for n in range(weeks)]


def cash_forecast(session: Session, as_of: date, weeks: int, timezone: str) -> Forecast:
    """The forecast as of `as_of` over `weeks` weeks (1 to MAX_WEEKS)."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise UserError(f"--weeks {weeks}: give a number of weeks from 1 to {MAX_WEEKS}")
    query = (
        select(
            INV.number,
            INV.customer_id,
            CUS.external_id,
            CUS.name,
            INV.currency,
            INV.balance,
            INV.due_date,
            INV.disputed,
        )
        .join(Customer.__table__, CUS.id == INV.customer_id)
        .where(INV.status == "open", INV.balance > 0, INV.issue_date <= as_of)
        .order_by(INV.due_date, CUS.external_id, INV.number)
    )
    rows = list(read_rows(session, query, shared=(1, 2, 3, 4, 6)))
    # The open invoices are read once: for the forecast, and as "not paid yet" for the model.
    still_open = [PaymentRecord(row[1], row[6], None, bool(row[7])) for row in rows]
    model = learn(session, as_of, timezone, still_open)
    starts = week_starts(as_of, weeks)
    expected: list[dict[str, Decimal]] = [defaultdict(Decimal) for _ in starts]
    invoices = []
    # Invoices of customers without history that fall due the same day get the same answer.
    answers: dict[tuple[object, date, bool], tuple[Prediction, list[float]]] = {}
    for number, customer_id, external_id, name, currency, balance, due_date, disputed in rows:
        key = (customer_id if customer_id in model.profiles else None, due_date, bool(disputed))
        answer = answers.get(key)
        if answer is None:
            answer = answers[key] = (
                model.predict(customer_id, due_date, key[2]),
                model.week_shares(customer_id, due_date, starts, key[2]),
            )
        prediction, shares = answer
        invoices.append(
            InvoiceForecast(number, external_id, name, currency, balance, due_date, prediction)
        )
        for week, share in zip(expected, shares, strict=True):
            if share > 0:
                week[currency] += balance * Decimal(share).quantize(SHARE_PLACES)
    return Forecast(
        as_of,
        invoices,
        [Week(start, dict(amounts)) for start, amounts in zip(starts, expected, strict=True)],
        model.paid_invoices,
        model.paid_since,
    )
