"""The portfolio week by week: DSO, open balances by aging bucket, cash collected, and the share of
invoices paid by their 30th day past due, per currency (never summed across currencies).

The ledger stores today's balance of each invoice, not its past balances, so a week's balances
are reconstructed. The approximation, stated plainly:

* An invoice's balance at the end of a day is its total minus the allocations of recorded
  payments received on or before that day (refunds are negative allocations), kept within
  0..total. An invoice counts from its issue date.
* Whatever difference remains between that and the stored balance (a ledger closure with no
  payment recorded here, a credit note, a write-off, an edit in the ledger) is dated at the
  invoice's `paid_at` when it is paid, otherwise at its last update (`updated_at`), both taken in
  the business's timezone. A write-off therefore leaves the receivables on the day the row last
  changed. Non-open invoices count as zero balance from then on, so the most recent figures
  agree with `bot.ledger.aging` for the same day.
* Void invoices are left out of every week (as `bot.ledger.aging` leaves them out of DSO's sales): the
  day they were voided is not stored.

Cash collected is the sum of recorded payments (`payments.received_on`, refunds negative), in
the payment's currency, including money not matched to any invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from bot.core.models import Invoice, Payment, PaymentAllocation
from bot.ledger.aging import BUCKETS, DSO_PERIOD_DAYS, bucket_for

DEFAULT_WEEKS = 12
WEEK_DAYS = 7
PAID_BY_DAYS = 30  # "paid before +30": fully paid by its 30th day past due
ZERO = Decimal(0)

PAYMENT = "payment"  # an allocation of a recorded payment (negative for a refund)
CLOSED = "closed"  # the part of a paid invoice that no recorded payment explains
ADJUSTED = "adjusted"  # any other difference between the stored balance and the payments


@dataclass(frozen=True, slots=True)
class MoneyIn:
    """Money that reduced (or, negative, raised) an invoice's balance on a day."""

    on: date
    amount: Decimal
    kind: str  # PAYMENT, CLOSED or ADJUSTED


@dataclass(frozen=True, slots=True)
class InvoiceHistory:
    invoice_id: int
    customer_id: int
    currency: str
    total: Decimal
    issue_date: date
    due_date: date
    status: str
    moves: tuple[MoneyIn, ...]  # oldest first

    def balance_on(self, day: date) -> Decimal:
        """The balance at the end of `day` (zero before the invoice was issued)."""
        if day < self.issue_date:
            return ZERO
        received = sum((move.amount for move in self.moves if move.on <= day), ZERO)
        return min(max(self.total - received, ZERO), self.total)

    def paid_on(self) -> date | None:
        """The day the balance reached zero for the last time; None unless the invoice is paid."""
        if self.status != "paid":
            return None
        received, day = ZERO, None
        for move in self.moves:
            before, received = received, received + move.amount
            if before < self.total <= received:
                day = move.on
        return day


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def start_of(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in the zone (aware), for comparing stored UTC instants."""
    return datetime.combine(day, time.min, zone)


def load_histories(
    session: Session, which: ColumnElement[bool], timezone: str
) -> dict[int, InvoiceHistory]:
    """The money history of every non-void invoice that `which` selects, by invoice id."""
    zone = ZoneInfo(timezone)
    chosen = (Invoice.status != "void") & which
    moves: dict[int, list[MoneyIn]] = defaultdict(list)
    for invoice_id, received_on, amount in session.execute(
        select(PaymentAllocation.invoice_id, Payment.received_on, PaymentAllocation.amount)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(chosen)
    ):
        moves[invoice_id].append(MoneyIn(received_on, amount, PAYMENT))
    histories = {}
    for invoice in session.scalars(select(Invoice).where(chosen)):
        own = moves.get(invoice.id, [])
        unexplained = _unexplained(invoice, own, zone)
        if unexplained is not None:
            own.append(unexplained)
        histories[invoice.id] = InvoiceHistory(
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            total=invoice.total,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            status=invoice.status,
            moves=tuple(sorted(own, key=lambda m: (m.on, m.kind != PAYMENT))),
        )
    return histories


def _unexplained(invoice: Invoice, moves: list[MoneyIn], zone: ZoneInfo) -> MoneyIn | None:
    owed_now = invoice.balance if invoice.status == "open" else ZERO
    difference = invoice.total - sum((m.amount for m in moves), ZERO) - owed_now
    if difference == 0:
        return None
    if invoice.status == "paid" and invoice.paid_at is not None:
        kind = CLOSED if difference > 0 else ADJUSTED
        return MoneyIn(local_day(invoice.paid_at, zone), difference, kind)
    return MoneyIn(local_day(invoice.updated_at, zone), difference, ADJUSTED)


@dataclass(frozen=True, slots=True)
class WeekMetrics:
    first_day: date
    last_day: date  # balances are as of the end of this day
    aging: dict[str, dict[str, Decimal]]  # currency -> bucket -> open balance
    dso: dict[str, Decimal | None]  # currency -> days; None when nothing was invoiced
    collected: dict[str, Decimal]  # currency -> payments received in the week
    reached_30: int  # invoices whose 30th day past due fell in the week
    paid_by_30: int  # ... of which were fully paid by then

    def open_total(self, currency: str) -> Decimal:
        return sum(self.aging.get(currency, {}).values(), ZERO)

    def overdue(self, currency: str) -> Decimal:
        return self.open_total(currency) - self.aging.get(currency, {}).get("current", ZERO)

    @property
    def paid_by_30_percent(self) -> Decimal | None:
        return percent(self.paid_by_30, self.reached_30)


def percent(part: int, whole: int) -> Decimal | None:
    """part / whole as a percentage with one decimal; None when there is nothing to divide."""
    if whole <= 0:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.1"), ROUND_HALF_UP)


def week_periods(today: date, weeks: int) -> list[tuple[date, date]]:
    """`weeks` seven-day periods, oldest first, the last one ending yesterday (as the weekly
    review does: today is not over yet)."""
    last = today - timedelta(days=1)
    return [
        (last - timedelta(days=WEEK_DAYS * k + WEEK_DAYS - 1), last - timedelta(days=WEEK_DAYS * k))
        for k in reversed(range(weeks))
    ]


def portfolio(
    session: Session, today: date, weeks: int = DEFAULT_WEEKS, timezone: str = "UTC"
) -> list[WeekMetrics]:
    """One `WeekMetrics` per week for the `weeks` weeks before `today`, oldest first."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    periods = week_periods(today, weeks)
    first, last = periods[0][0], periods[-1][1]
    zone = ZoneInfo(timezone)
    histories = list(load_histories(session, _could_matter(first, last, zone), timezone).values())
    collected = _collected_by_day(session, first, last)
    currencies = sorted({h.currency for h in histories} | {c for _, c in collected})
    return [
        _week(first_day, last_day, histories, collected, currencies)
        for first_day, last_day in periods
    ]


def _could_matter(first: date, last: date, zone: ZoneInfo) -> ColumnElement[bool]:
    """Invoices that can show in weeks first..last: open ones, ones changed since, ones whose
    total counts in DSO's sales, and ones whose 30th day past due falls in the weeks. The rest
    were settled before and weigh nothing in any of them."""
    return (Invoice.issue_date <= last) & or_(
        Invoice.status == "open",
        Invoice.updated_at >= start_of(first, zone),
        Invoice.issue_date > first - timedelta(days=DSO_PERIOD_DAYS),
        Invoice.due_date >= first - timedelta(days=PAID_BY_DAYS),
    )


def _collected_by_day(session: Session, first: date, last: date) -> dict[tuple[date, str], Decimal]:
    rows = session.execute(
        select(Payment.received_on, Payment.currency, func.sum(Payment.amount))
        .where(Payment.received_on >= first, Payment.received_on <= last)
        .group_by(Payment.received_on, Payment.currency)
    )
    return {(day, currency): Decimal(amount) for day, currency, amount in rows}


def _week(
    first_day: date,
    last_day: date,
    histories: Sequence[InvoiceHistory],
    collected: dict[tuple[date, str], Decimal],
    currencies: Iterable[str],
) -> WeekMetrics:
    aging = {code: dict.fromkeys(BUCKETS, ZERO) for code in currencies}
    sales: dict[str, Decimal] = defaultdict(Decimal)
    sales_from = last_day - timedelta(days=DSO_PERIOD_DAYS)
    reached_from = first_day - timedelta(days=PAID_BY_DAYS)
    reached_until = last_day - timedelta(days=PAID_BY_DAYS)
    reached = paid = 0
    for history in histories:
        balance = history.balance_on(last_day)
        if balance > 0:
            bucket = bucket_for((last_day - history.due_date).days)
            aging[history.currency][bucket] += balance
        if sales_from < history.issue_date <= last_day:
            sales[history.currency] += history.total
        # Its 30th day past due falls in the week; counted back from the week's days, so a due
        # date at the end of the calendar (9999-12-31, stored before dates were checked) cannot
        # overflow.
        if reached_from <= history.due_date <= reached_until and history.total > 0:
            reached += 1
            paid_on = history.paid_on()
            if paid_on is not None and (paid_on - history.due_date).days <= PAID_BY_DAYS:
                paid += 1
    cash = {code: ZERO for code in aging}
    for (day, currency), amount in collected.items():
        if first_day <= day <= last_day:
            cash[currency] += amount
    return WeekMetrics(
        first_day=first_day,
        last_day=last_day,
        aging=aging,
        dso={code: dso(sum(aging[code].values(), ZERO), sales[code]) for code in aging},
        collected=cash,
        reached_30=reached,
        paid_by_30=paid,
    )


def dso(receivables: Decimal, sales: Decimal) -> Decimal | None:
    """Days sales outstanding as `bot.ledger.aging` computes it: receivables / credit sales of the last
    DSO_PERIOD_DAYS days x DSO_PERIOD_DAYS."""
    if sales <= 0:
        return None
    return (receivables / sales * DSO_PERIOD_DAYS).quantize(Decimal("0.1"), ROUND_HALF_UP)
