"""Does arbot's follow-up move the numbers? The customers it follows up against the ones it only
watches, over the same weeks, with 95% confidence intervals by bootstrap over customers
(bot.learning.bootstrap).

Two designs, the fairer first:

* **Control group** (ARBOT_CONTROL_SHARE, bot.planning.control): customers in the pilot's scope
  drawn at random into a control group that gets no automated reminder, against those drawn to be
  followed up. A customer counts from the day it was assigned.
* **Pilot against observed**: with no holdout ever run, the customers the pilot's scope
  (ARBOT_PILOT_TIERS, _TAGS, _CUSTOMERS) takes in against the rest, as the settings stand today.
  These segments are chosen, not drawn: part of any difference may come from who is in them.

The figures, each per customer and summed over a group (so each is a ratio of sums):

* days past due at payment: over invoices fully paid in the weeks, the day paid minus the due
  date (negative when paid early), averaged;
* paid by +30: of the invoices whose 30th day past due fell in the weeks, the share fully paid by
  then;
* DSO at the end of the weeks, per currency: receivables / sales of the last 90 days x 90;
* cash collected per customer and week, per currency: recorded payments of the group's
  customers in the weeks, over the customer-weeks counted (money not matched to a customer is
  left out).

A difference is reported as a number only when its interval leaves 0 out and the interval's
half-width is no more than the difference, and each group has at least MIN_CUSTOMERS customers
behind the figure; otherwise it reads "not enough data yet".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from bot.core.models import ControlAssignment, Customer, Invoice, Payment
from bot.core.money import format_money, minor_units
from bot.core.settings import Settings
from bot.learning.bootstrap import MIN_CUSTOMERS, Difference, Part, counted, difference, ratio
from bot.learning.metrics import PAID_BY_DAYS, WEEK_DAYS, InvoiceHistory, load_histories, start_of
from bot.ledger.aging import DSO_PERIOD_DAYS
from bot.planning import control
from bot.planning.planner import Pilot, PlanRules

NOT_ENOUGH = "not enough data yet"
WORDS = {  # the figure -> how a positive and a negative gain read
    "late": ("sooner", "later"),
    "by30": ("higher", "lower"),
    "dso": ("shorter", "longer"),
    "cash": ("more", "less"),
}
CONTROL_DESIGN = "control"
PILOT_DESIGN = "pilot"


@dataclass(frozen=True, slots=True)
class Row:
    """One figure for both groups. `gain` is the difference the follow-up makes, signed so that
    positive is better for the followed group (fewer days, a larger share, more cash)."""

    key: str
    title: str
    unit: str  # "days", "%", or a currency code
    followed: float | None
    baseline: float | None
    followed_customers: int
    baseline_customers: int
    difference: Difference | None
    lower_is_better: bool

    @property
    def gain(self) -> tuple[float, float, float] | None:
        """(gain, low, high), positive meaning the followed group does better."""
        d = self.difference
        if d is None:
            return None
        if self.lower_is_better:
            return -d.effect, -d.high, -d.low
        return d.effect, d.low, d.high

    @property
    def conclusive(self) -> bool:
        return self.difference is not None and self.difference.conclusive

    def gain_text(self) -> str:
        """The difference in words ("6.2 days sooner", "4.0 points higher"), or NOT_ENOUGH."""
        gain = self.gain
        if gain is None or not self.conclusive:
            return NOT_ENOUGH
        better, worse = WORDS[self.key.split(":")[0]]
        return f"{self._amount(abs(gain[0]))} {better if gain[0] > 0 else worse}"

    def interval_text(self) -> str:
        """The gain's 95% interval, whatever the verdict: "-1.2 to 4.5 days"."""
        gain = self.gain
        if gain is None:
            return f"fewer than {MIN_CUSTOMERS} customers in a group"
        return f"{self._amount(gain[1])} to {self._amount(gain[2])}"

    def value_text(self, value: float | None) -> str:
        if value is None:
            return "\N{EN DASH}"
        return f"{_one(value)}%" if self.unit == "%" else self._amount(value)

    def _amount(self, value: float) -> str:
        if self.unit == "days":
            return f"{_one(value)} days"
        if self.unit == "%":
            return f"{_one(value)} points"
        places = minor_units(self.unit)
        exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
        return format_money(exact, self.unit)


@dataclass(frozen=True, slots=True)
class WeekPoint:
    last_day: date
    followed: float | None  # mean days past due at payment of invoices paid that week
    baseline: float | None


@dataclass(frozen=True)
class Comparison:
    design: str  # CONTROL_DESIGN or PILOT_DESIGN
    since: date
    until: date
    followed_customers: int  # customers in each group (whatever they weigh in the figures)
    baseline_customers: int
    rows: list[Row] = field(default_factory=list)
    weekly: list[WeekPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ended: date | None = None  # the holdout ended that day (`until` is no later)

    @property
    def followed_label(self) -> str:
        return "pilot segment" if self.design == PILOT_DESIGN else "followed-up group"

    @property
    def baseline_label(self) -> str:
        return "observed segment" if self.design == PILOT_DESIGN else "control group"

    @property
    def weeks(self) -> int:
        return math.ceil(((self.until - self.since).days + 1) / WEEK_DAYS)

    @property
    def headline(self) -> Row:
        return self.rows[0]

    def sentence(self) -> str:
        """E.g. "the pilot segment pays 6.2 days sooner (95% CI 2.1-10.4) over 8 weeks, 41
        customers against 38", or the same groups with NOT_ENOUGH."""
        row = self.headline
        counts = f"{row.followed_customers} customers against {row.baseline_customers}"
        if self.ended is not None:
            counts += f" (the holdout ended on {self.ended.isoformat()})"
        period = f"over {self.weeks} week{'s' if self.weeks != 1 else ''}"
        gain = row.gain
        if gain is None or not row.conclusive:
            return (
                f"the {self.followed_label} against the {self.baseline_label} {period}, "
                f"{counts}: {NOT_ENOUGH}"
            )
        value, low, high = gain if gain[0] > 0 else (-gain[0], -gain[2], -gain[1])
        how = "sooner" if gain[0] > 0 else "later"
        than = f" than the {self.baseline_label}" if self.design == CONTROL_DESIGN else ""
        return (
            f"the {self.followed_label} pays {_one(value)} days {how}{than} "
            f"(95% CI {_one(low)}\N{EN DASH}{_one(high)}) {period}, {counts}"
        )


@dataclass(frozen=True)
class Unavailable:
    reason: str


def pilot_of(settings: Settings) -> Pilot:
    """The pilot's scope as the planner reads it from the settings."""
    return PlanRules.from_settings(settings).pilot


def _one(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text.replace("-", "\N{MINUS SIGN}")


# --- Who is in which group ----------------------------------------------------------------------


@dataclass(frozen=True)
class Groups:
    design: str
    followed: dict[int, date]  # customer id -> first day counted
    baseline: dict[int, date]
    notes: list[str]
    ended: date | None = None  # the holdout ended that day: nothing after it is compared


def groups(
    session: Session, since: date, until: date, timezone: str, pilot: Pilot | None
) -> Groups | Unavailable:
    """The control design when a holdout ever assigned anyone, else pilot against observed."""
    zone = ZoneInfo(timezone)
    stored = control.assignments(session)
    if stored:
        end = control.ended(session)
        last = until if end is None else min(until, end.at.astimezone(zone).date())
        followed: dict[int, date] = {}
        baseline: dict[int, date] = {}
        for row in stored:
            first = max(since, row.assigned_at.astimezone(zone).date())
            if first > last:
                continue
            (baseline if row.grp == control.CONTROL else followed)[row.customer_id] = first
        notes = _share_notes(stored, zone) + _earlier_notes(session, zone)
        if end is None:
            return Groups(CONTROL_DESIGN, followed, baseline, notes)
        ended_on = end.at.astimezone(zone).date()
        if ended_on < since:
            return Unavailable(
                f"no comparison: the holdout ended on {ended_on.isoformat()}, before these "
                "weeks (a non-zero ARBOT_CONTROL_SHARE starts a new one)"
            )
        notes.append(
            f"The holdout ended on {ended_on.isoformat()} (by {end.by}): its control group is "
            "followed up since, so the comparison covers the weeks it ran, up to that day."
        )
        return Groups(CONTROL_DESIGN, followed, baseline, notes, ended_on)
    if pilot is None or not (pilot.tiers or pilot.tags or pilot.customers):
        return Unavailable(
            "no comparison: arbot follows up the whole book and no control group was drawn "
            "(set ARBOT_CONTROL_SHARE, e.g. 0.1, or a pilot scope: ARBOT_PILOT_TIERS, "
            "ARBOT_PILOT_TAGS or ARBOT_PILOT_CUSTOMERS)"
        )
    followed, baseline = {}, {}
    for customer_id, tier, tags, external_id in session.execute(
        select(Customer.id, Customer.tier, Customer.tags, Customer.external_id)
    ):
        in_scope = pilot.scope_covers(tier, list(tags or []), external_id)
        (followed if in_scope else baseline)[customer_id] = since
    notes = [
        "The segments follow today's pilot scope and are chosen, not drawn at random: part of "
        "any difference may come from who is in them. ARBOT_CONTROL_SHARE draws a fair "
        "comparison."
    ]
    return Groups(PILOT_DESIGN, followed, baseline, notes)


def _earlier_notes(session: Session, zone: ZoneInfo) -> list[str]:
    """A line per ended holdout a new one replaced: its groups are kept in the audit log."""
    lines = []
    for earlier in control.earlier_holdouts(session):
        until = (
            f" to {earlier.ended.astimezone(zone).date().isoformat()} (ended by {earlier.ended_by})"
            if earlier.ended is not None
            else ""
        )
        lines.append(
            f"An earlier holdout ran from {earlier.started.astimezone(zone).date().isoformat()}"
            f"{until}, {earlier.control} in its control group and {earlier.followed} followed: "
            "a new one was drawn after it, compared here; its groups are kept in the audit log "
            "(control.archived)."
        )
    return lines


def _share_notes(stored: Sequence[ControlAssignment], zone: ZoneInfo) -> list[str]:
    """One line per share the holdout has drawn with, naming when it applied."""
    by_share: dict[Decimal, list[date]] = defaultdict(list)
    for row in stored:
        by_share[row.share].append(row.assigned_at.astimezone(zone).date())
    parts = [
        f"share {share.normalize():f} for {len(days)} customer{'s' if len(days) != 1 else ''} "
        f"drawn {min(days).isoformat()} to {max(days).isoformat()}"
        for share, days in sorted(by_share.items(), key=lambda item: min(item[1]))
    ]
    line = "Control group drawn at random (ARBOT_CONTROL_SHARE): " + "; ".join(parts) + "."
    if len(by_share) > 1:
        line += " The share changed: customers keep the group they were drawn into."
    return [line]


# --- The figures --------------------------------------------------------------------------------


def compare(
    session: Session,
    since: date,
    until: date,
    *,
    timezone: str = "UTC",
    pilot: Pilot | None = None,
) -> Comparison | Unavailable:
    """The followed group against the baseline, from `since` to `until` (days in `timezone`)."""
    found = groups(session, since, until, timezone, pilot)
    if isinstance(found, Unavailable):
        return found
    if not found.followed or not found.baseline:
        empty = "control group" if found.design == CONTROL_DESIGN else "observed segment"
        if not found.followed:
            empty = "followed-up group" if found.design == CONTROL_DESIGN else "pilot segment"
        return Unavailable(f"no comparison: the {empty} has no customers yet")
    if found.ended is not None and found.ended < until:
        until = found.ended  # the weeks the holdout ran
    zone = ZoneInfo(timezone)
    histories = load_histories(session, _could_matter(since, until, zone), timezone)
    by_customer: dict[int, list[InvoiceHistory]] = defaultdict(list)
    for history in histories.values():
        by_customer[history.customer_id].append(history)
    cash = _cash(session, since, until)
    first_counted = min([*found.followed.values(), *found.baseline.values()])
    rows = _rows(found, by_customer, cash, until)
    return Comparison(
        design=found.design,
        since=first_counted,
        until=until,
        followed_customers=len(found.followed),
        baseline_customers=len(found.baseline),
        rows=rows,
        weekly=_weekly(found, by_customer, first_counted, until),
        notes=found.notes,
        ended=found.ended,
    )


def _could_matter(since: date, until: date, zone: ZoneInfo) -> ColumnElement[bool]:
    return (Invoice.issue_date <= until) & or_(
        Invoice.status == "open",
        Invoice.updated_at >= start_of(since, zone),
        Invoice.issue_date > until - timedelta(days=DSO_PERIOD_DAYS),
        Invoice.due_date >= since - timedelta(days=PAID_BY_DAYS),
    )


def _cash(session: Session, since: date, until: date) -> dict[int, list[tuple[date, str, Decimal]]]:
    found: dict[int, list[tuple[date, str, Decimal]]] = defaultdict(list)
    for customer_id, day, currency, amount in session.execute(
        select(Payment.customer_id, Payment.received_on, Payment.currency, Payment.amount).where(
            Payment.customer_id.is_not(None),
            Payment.received_on >= since,
            Payment.received_on <= until,
        )
    ):
        if customer_id is not None:
            found[customer_id].append((day, currency, amount))
    return found


def _rows(
    found: Groups,
    by_customer: dict[int, list[InvoiceHistory]],
    cash: dict[int, list[tuple[date, str, Decimal]]],
    until: date,
) -> list[Row]:
    parts: dict[str, dict[str, list[Part]]] = defaultdict(lambda: {"f": [], "b": []})
    for side, members in (("f", found.followed), ("b", found.baseline)):
        for customer_id, first in members.items():
            own = by_customer.get(customer_id, [])
            for key, part in _customer_parts(own, cash.get(customer_id, []), first, until):
                parts[key][side].append(part)
    rows = [
        _row("late", "Days past due at payment", "days", parts["late"], lower_is_better=True),
        _row("by30", f"Paid by +{PAID_BY_DAYS} days", "%", parts["by30"], lower_is_better=False),
    ]
    currencies = sorted({k.split(":")[1] for k in parts if ":" in k})
    for code in currencies:
        rows.append(
            _row(
                f"dso:{code}", f"DSO ({code})", "days", parts[f"dso:{code}"], True, DSO_PERIOD_DAYS
            )
        )
    for code in currencies:
        rows.append(
            _row(
                f"cash:{code}",
                f"Cash collected per customer-week ({code})",
                code,
                parts[f"cash:{code}"],
                lower_is_better=False,
            )
        )
    return rows


def _customer_parts(
    histories: list[InvoiceHistory],
    payments: list[tuple[date, str, Decimal]],
    first: date,
    until: date,
) -> list[tuple[str, Part]]:
    """What one customer brings to each figure, counting from `first` to `until`."""
    late_days = late_count = reached = paid_by = 0
    receivables: dict[str, float] = defaultdict(float)
    sales: dict[str, float] = defaultdict(float)
    currencies: set[str] = set()
    sales_from = until - timedelta(days=DSO_PERIOD_DAYS)
    days_30 = timedelta(days=PAID_BY_DAYS)
    for history in histories:
        paid_on = history.paid_on()
        if paid_on is not None and first <= paid_on <= until:
            late_days += (paid_on - history.due_date).days
            late_count += 1
        # counted back from `until`, so a due date at the end of the calendar cannot overflow
        reach_from, reach_until = first - days_30, until - days_30
        if history.total > 0 and reach_from <= history.due_date <= reach_until:
            reached += 1
            if paid_on is not None and (paid_on - history.due_date).days <= PAID_BY_DAYS:
                paid_by += 1
        code = history.currency
        receivables[code] += float(history.balance_on(until))
        if sales_from < history.issue_date <= until:
            sales[code] += float(history.total)
        if history.issue_date <= until and (paid_on is None or paid_on >= first):
            currencies.add(code)
    collected: dict[str, float] = defaultdict(float)
    for day, code, amount in payments:
        if first <= day <= until:
            collected[code] += float(amount)
            currencies.add(code)
    weeks = ((until - first).days + 1) / WEEK_DAYS
    out = [("late", Part(late_days, late_count)), ("by30", Part(100 * paid_by, reached))]
    for code in sorted(currencies | set(receivables)):
        if receivables[code] or sales[code]:
            out.append((f"dso:{code}", Part(receivables[code], sales[code])))
        if code in currencies:
            out.append((f"cash:{code}", Part(collected[code], weeks)))
    return out


def _row(
    key: str,
    title: str,
    unit: str,
    sides: dict[str, list[Part]],
    lower_is_better: bool,
    scale: float = 1.0,
) -> Row:
    followed, baseline = sides["f"], sides["b"]
    if scale != 1.0:
        followed = [Part(p.numerator * scale, p.denominator) for p in followed]
        baseline = [Part(p.numerator * scale, p.denominator) for p in baseline]
    return Row(
        key=key,
        title=title,
        unit=unit,
        followed=ratio(followed),
        baseline=ratio(baseline),
        followed_customers=counted(followed),
        baseline_customers=counted(baseline),
        difference=difference(followed, baseline),
        lower_is_better=lower_is_better,
    )


def _weekly(
    found: Groups, by_customer: dict[int, list[InvoiceHistory]], since: date, until: date
) -> list[WeekPoint]:
    """Mean days past due at payment of the invoices paid each week, for both groups."""
    weeks = math.ceil(((until - since).days + 1) / WEEK_DAYS)
    ends = [until - timedelta(days=WEEK_DAYS * k) for k in reversed(range(weeks))]
    sums: dict[tuple[str, int], list[int]] = defaultdict(list)
    for side, members in (("f", found.followed), ("b", found.baseline)):
        for customer_id, first in members.items():
            for history in by_customer.get(customer_id, []):
                paid_on = history.paid_on()
                if paid_on is None or not first <= paid_on <= until:
                    continue
                index = weeks - 1 - (until - paid_on).days // WEEK_DAYS
                sums[(side, index)].append((paid_on - history.due_date).days)

    def mean(side: str, index: int) -> float | None:
        values = sums.get((side, index))
        return sum(values) / len(values) if values else None

    return [WeekPoint(end, mean("f", i), mean("b", i)) for i, end in enumerate(ends)]
