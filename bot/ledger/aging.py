"""Aging of open balances and days sales outstanding, per currency (never summed across currencies)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    case,
    column,
    func,
    literal,
    select,
    table,
)
from sqlalchemy.sql.elements import SQLCoreOperations

from bot.core.dbtypes import Amount
from bot.core.money import decimal_str

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
DSO_PERIOD_DAYS = 90
ZERO = Decimal(0)

# The invoice columns the report reads, as a plain table: the report needs none of the mapped
# classes, so `arbot aging` starts without building the whole model (a test holds these columns
# to bot.core.models' invoices table).
INVOICES = table(
    "invoices",
    column("customer_id", Integer),
    column("issue_date", Date),
    column("due_date", Date),
    column("currency", String),
    column("total", Amount),
    column("balance", Amount),
    column("status", String),
)
_invoice = INVOICES.c


@dataclass(frozen=True)
class CurrencyAging:
    currency: str
    buckets: dict[str, Decimal]
    invoice_count: int
    dso: Decimal | None  # None when nothing was invoiced in the period

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)

    def overdue(self) -> Decimal:
        return self.total - self.buckets["current"]

    def as_json(self) -> dict[str, str]:
        doc = {name: decimal_str(amount, self.currency) for name, amount in self.buckets.items()}
        doc["total"] = decimal_str(self.total, self.currency)
        return doc


@dataclass(frozen=True)
class AgingReport:
    as_of: date
    currencies: dict[str, CurrencyAging]

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "currencies": {code: aging.as_json() for code, aging in self.currencies.items()},
            "dso": {
                code: None if aging.dso is None else str(aging.dso)
                for code, aging in self.currencies.items()
            },
            "dso_period_days": DSO_PERIOD_DAYS,
        }


def bucket_for(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _bucket_expression(as_of: date) -> ColumnElement[str]:
    # Boundaries as dates so the same SQL runs on SQLite and PostgreSQL.
    return case(
        (_invoice.due_date >= as_of, literal("current")),
        (_invoice.due_date >= as_of - timedelta(days=30), literal("1-30")),
        (_invoice.due_date >= as_of - timedelta(days=60), literal("31-60")),
        (_invoice.due_date >= as_of - timedelta(days=90), literal("61-90")),
        else_=literal("90+"),
    )


def open_invoices_as_of(
    as_of: date,
    status: SQLCoreOperations[str] = _invoice.status,
    balance: SQLCoreOperations[Decimal] = _invoice.balance,
    issue_date: SQLCoreOperations[date] = _invoice.issue_date,
) -> ColumnElement[bool]:
    """Open with a balance, and already issued on that date (of INVOICES, or of the columns
    given: a query of the mapped Invoice passes its own)."""
    return (status == "open") & (balance > 0) & (issue_date <= as_of)


def aging_report(
    session: Session | Connection, as_of: date, customer_id: int | None = None
) -> AgingReport:
    """The report from a session, or from a plain connection (no ORM needed)."""
    bucket = _bucket_expression(as_of).label("bucket")
    query = (
        select(_invoice.currency, bucket, func.sum(_invoice.balance), func.count())
        .where(open_invoices_as_of(as_of))
        .group_by(_invoice.currency, bucket)
    )
    if customer_id is not None:
        query = query.where(_invoice.customer_id == customer_id)
    sums: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for currency, bucket_name, amount, count in session.execute(query):
        sums.setdefault(currency, dict.fromkeys(BUCKETS, ZERO))[bucket_name] = amount
        counts[currency] = counts.get(currency, 0) + count
    sales = _sales_in_period(session, as_of, customer_id)
    currencies = {
        code: CurrencyAging(
            currency=code,
            buckets=buckets,
            invoice_count=counts[code],
            dso=_dso(sum(buckets.values(), ZERO), sales.get(code, ZERO)),
        )
        for code, buckets in sorted(sums.items())
    }
    return AgingReport(as_of=as_of, currencies=currencies)


def _sales_in_period(
    session: Session | Connection, as_of: date, customer_id: int | None
) -> dict[str, Decimal]:
    start = as_of - timedelta(days=DSO_PERIOD_DAYS)
    query = (
        select(_invoice.currency, func.sum(_invoice.total))
        .where(_invoice.issue_date > start, _invoice.issue_date <= as_of, _invoice.status != "void")
        .group_by(_invoice.currency)
    )
    if customer_id is not None:
        query = query.where(_invoice.customer_id == customer_id)
    return {currency: total for currency, total in session.execute(query)}


def _dso(receivables: Decimal, sales: Decimal) -> Decimal | None:
    """Days sales outstanding: receivables / credit sales of the period x days in the period."""
    if sales <= 0:
        return None
    return (receivables / sales * DSO_PERIOD_DAYS).quantize(Decimal("0.1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class OverdueInvoice:
    customer_id: str
    customer_name: str
    tier: str
    number: str
    due_date: date
    days_past_due: int
    balance: Decimal
    currency: str


def overdue_invoices(session: Session, as_of: date) -> list[OverdueInvoice]:
    """Every open invoice past its due date, the oldest first."""
    from bot.core.models import Customer, Invoice

    is_open = open_invoices_as_of(as_of, Invoice.status, Invoice.balance, Invoice.issue_date)
    rows = session.execute(
        select(Customer.external_id, Customer.name, Customer.tier, Invoice)
        .join(Invoice, Invoice.customer_id == Customer.id)
        .where(is_open, Invoice.due_date < as_of)
        .order_by(Invoice.due_date, Customer.name, Invoice.number)
    )
    return [
        OverdueInvoice(
            customer_id=external_id,
            customer_name=name,
            tier=tier,
            number=invoice.number,
            due_date=invoice.due_date,
            days_past_due=(as_of - invoice.due_date).days,
            balance=invoice.balance,
            currency=invoice.currency,
        )
        for external_id, name, tier, invoice in rows
    ]
