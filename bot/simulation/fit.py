"""Fitting the behaviour model to the business's own ledger history (`arbot simulate --fit`).

Every open or paid invoice is followed over the business days from its issue to the day it was
paid (or to the day before `as_of`, when still open): each day it either was paid or was not.
The model says the chance of payment on a day is `pay_daily[tier] x w(days past due)`, where
`w` is `not_yet_due_factor` before the due date and halves every `halving_days_overdue` days
after it, plus `pay_on_touch_day[tier]` on a day a reminder about it went out. The fit keeps the
pair (halving days, factor before due) from a grid that gives the history the highest likelihood,
with each tier's daily rate at its best value for that pair (payments / weighted days). The
reminder lift is measured only on days a reminder went out: payments seen that day beyond what
the fitted rate predicts, per reminder-day, the same for every tier.

With too little history the defaults are kept and the result says why.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Invoice, Payment, PaymentAllocation, Reminder, ReminderInvoice
from bot.simulation.model import BehaviourModel

MIN_PAID = 30  # paid invoices needed to fit anything
MIN_TIER_PAID = 10  # paid invoices a tier needs for its own daily rate
MIN_TOUCH_DAYS = 50  # reminder-days needed to measure a reminder's effect
HORIZON_DAYS = 365  # "never paid": not paid within this many days of issue
FOLLOWED_DAYS = 730  # invoices issued this many days back at most, followed as long at most
HALVING_GRID = (10, 15, 20, 30, 45, 60, 90, 120, 180, 365, 730, 3650)
BEFORE_DUE_GRID = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
TIERS = ("strategic", "standard", "transactional")


@dataclass(frozen=True)
class InvoiceHistory:
    tier: str
    issue_date: date
    due_date: date
    paid_on: date | None
    touched_on: frozenset[date]


@dataclass(frozen=True)
class Implied:
    """What a model implies for invoices like the history's: mean days after due of those paid
    within the horizon, and the share not paid within it."""

    mean_days_late: float | None
    share_unpaid: float | None


@dataclass(frozen=True)
class Fit:
    model: BehaviourModel  # the fitted model (the defaults where there was too little history)
    fitted: bool
    paid: int
    open: int
    touch_days: int
    notes: list[str]  # what was kept at its default, and why
    history: Implied  # what the ledger itself shows
    with_fitted: Implied
    with_defaults: Implied
    as_of: date


def read_history(session: Session, as_of: date, timezone: str) -> list[InvoiceHistory]:
    """Every open or paid invoice issued in the two years before `as_of` (recent habits, and a
    bounded read): its customer's tier, its dates, the
    day it was paid (the latest payment allocated to it, else the day arbot saw it paid), and
    the days a reminder about it went out. Void and written-off invoices say nothing of when a
    customer pays and are left out."""
    zone = ZoneInfo(timezone)
    received = dict(
        session.execute(
            select(PaymentAllocation.invoice_id, func.max(Payment.received_on))
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .group_by(PaymentAllocation.invoice_id)
        ).all()
    )
    touches: dict[int, set[date]] = defaultdict(set)
    for invoice_id, sent_at in session.execute(
        select(ReminderInvoice.invoice_id, Reminder.sent_at)
        .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
        .where(Reminder.state == "sent", Reminder.sent_at.is_not(None))
    ):
        if sent_at is not None:
            touches[invoice_id].add(sent_at.astimezone(zone).date())
    rows = session.execute(
        select(
            Invoice.id,
            Customer.tier,
            Invoice.issue_date,
            Invoice.due_date,
            Invoice.status,
            Invoice.paid_at,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.status.in_(("open", "paid")),
            Invoice.issue_date < as_of,
            Invoice.issue_date >= as_of - timedelta(days=FOLLOWED_DAYS),
        )
        .order_by(Invoice.id)
    ).all()
    history = []
    for invoice_id, tier, issued, due, status, paid_at in rows:
        paid_on: date | None = None
        if status == "paid":
            paid_on = received.get(invoice_id) or (
                paid_at.astimezone(zone).date() if paid_at else None
            )
            if paid_on is None:
                continue  # paid, but arbot cannot tell when
        history.append(
            InvoiceHistory(tier, issued, due, paid_on, frozenset(touches.get(invoice_id, ())))
        )
    return history


def fit_model(
    history: list[InvoiceHistory],
    as_of: date,
    business_days: frozenset[int],
    defaults: BehaviourModel | None = None,
) -> Fit:
    """The behaviour model that best explains `history` (see the module's docstring)."""
    defaults = defaults or BehaviourModel()
    paid = sum(1 for h in history if h.paid_on is not None and h.paid_on < as_of)
    opened = len(history) - paid
    exposure, events, touch = _count(history, as_of, business_days)
    touch_days = sum(n for n, _ in touch.values())
    observed = _observed(history, as_of)
    notes: list[str] = []
    model = defaults
    if paid < MIN_PAID:
        notes.append(
            f"only {paid} paid invoices in the ledger's history; at least {MIN_PAID} are needed "
            "to fit the model, so the defaults are kept"
        )
    else:
        model = _fit_rates(exposure, events, defaults, notes)
        model = _fit_touch(model, touch, touch_days, defaults, notes)
    return Fit(
        model=model,
        fitted=model is not defaults,
        paid=paid,
        open=opened,
        touch_days=touch_days,
        notes=notes,
        history=observed,
        with_fitted=implied(model, history, as_of, business_days),
        with_defaults=implied(defaults, history, as_of, business_days),
        as_of=as_of,
    )


def implied(
    model: BehaviourModel,
    history: list[InvoiceHistory],
    as_of: date,
    business_days: frozenset[int],
) -> Implied:
    """What the model says of the history's own invoices, each seen for as long as the history
    saw it (from its issue to `as_of`, at most the horizon): the mean days after due of those
    paid in that time, and the share of those issued a horizon ago not paid within it. Compared
    with `_observed`, the same invoices and the same windows, so a recent invoice still open
    biases neither side."""
    curves: dict[tuple[str, int, int], tuple[list[float], list[float]]] = {}
    paid_mass = late_sum = unpaid = 0.0
    old = 0
    for item in history:
        term = (item.due_date - item.issue_date).days
        key = (item.tier, term, item.issue_date.weekday())
        if key not in curves:
            curves[key] = _curve(model, item.tier, term, item.issue_date, business_days)
        paid, late = curves[key]
        window = min(HORIZON_DAYS, (as_of - item.issue_date).days)
        if window <= 0:
            continue
        paid_mass += paid[window - 1]
        late_sum += late[window - 1]
        if window == HORIZON_DAYS:
            old += 1
            unpaid += 1 - paid[window - 1]
    return Implied(late_sum / paid_mass if paid_mass else None, unpaid / old if old else None)


def _curve(
    model: BehaviourModel, tier: str, term: int, issued: date, business_days: frozenset[int]
) -> tuple[list[float], list[float]]:
    """For each day after issue: the chance it is paid by then, and the days after due that
    payment makes, summed (weighted by its chance)."""
    survive, paid, late_sum = 1.0, 0.0, 0.0
    paid_by, late_by = [], []
    for offset in range(HORIZON_DAYS):
        if (issued + timedelta(days=offset)).weekday() in business_days:
            late = offset - term
            p = model.pay_probability(tier, late, None, False)
            paid += survive * p
            late_sum += survive * p * late
            survive *= 1 - p
        paid_by.append(paid)
        late_by.append(late_sum)
    return paid_by, late_by


def _count(
    history: list[InvoiceHistory], as_of: date, business_days: frozenset[int]
) -> tuple[
    dict[str, Counter[int]], dict[str, Counter[int]], dict[tuple[str, int], tuple[int, int]]
]:
    """Per tier and days past due: business days followed and payments, on days no reminder
    went out; and on reminder days, per (tier, days past due): (days, payments)."""
    exposure: dict[str, Counter[int]] = defaultdict(Counter)
    events: dict[str, Counter[int]] = defaultdict(Counter)
    touch: dict[tuple[str, int], tuple[int, int]] = {}
    for item in history:
        paid_on = item.paid_on if item.paid_on is not None and item.paid_on < as_of else None
        if paid_on is not None:
            while paid_on.weekday() not in business_days:  # a weekend payment: the next day
                paid_on += timedelta(days=1)
        last = paid_on or (as_of - timedelta(days=1))
        last = min(last, item.issue_date + timedelta(days=FOLLOWED_DAYS))
        day = item.issue_date
        while day <= last:
            if day.weekday() in business_days:
                late = (day - item.due_date).days
                paid = int(day == paid_on)
                if day in item.touched_on:
                    days, payments = touch.get((item.tier, late), (0, 0))
                    touch[(item.tier, late)] = (days + 1, payments + paid)
                else:
                    exposure[item.tier][late] += 1
                    events[item.tier][late] += paid
            day += timedelta(days=1)
    return exposure, events, touch


def _weight(late: int, halving: float, before_due: float) -> float:
    return before_due if late < 0 else 0.5 ** (late / halving)


def _fit_rates(
    exposure: dict[str, Counter[int]],
    events: dict[str, Counter[int]],
    defaults: BehaviourModel,
    notes: list[str],
) -> BehaviourModel:
    own = [t for t in TIERS if sum(events[t].values()) >= MIN_TIER_PAID]
    for tier in TIERS:
        if tier not in own:
            notes.append(
                f"pay_daily.{tier}: only {sum(events[tier].values())} paid invoices of this tier "
                f"(at least {MIN_TIER_PAID} needed); the default is kept"
            )
    best: tuple[float, int, float, dict[str, float]] | None = None
    for halving in HALVING_GRID:
        for before_due in BEFORE_DUE_GRID:
            total, rates = 0.0, {}
            for tier in own:
                weights = {k: _weight(k, halving, before_due) for k in exposure[tier]}
                weighted = sum(n * weights[k] for k, n in exposure[tier].items())
                rate = min(sum(events[tier].values()) / weighted, 1 / max(weights.values()))
                rates[tier] = rate
                for k, n in exposure[tier].items():
                    p = min(max(rate * weights[k], 1e-12), 1 - 1e-12)
                    paid = events[tier][k]
                    total += paid * math.log(p) + (n - paid) * math.log(1 - p)
            if best is None or total > best[0]:
                best = (total, halving, before_due, rates)
    assert best is not None
    _, halving, before_due, rates = best
    pay_daily = dict(defaults.pay_daily)
    for tier, rate in rates.items():
        pay_daily[tier] = round(min(rate, 1.0), 4)  # type: ignore[index]
    return replace(
        defaults,
        pay_daily=pay_daily,
        halving_days_overdue=halving,
        not_yet_due_factor=before_due,
    )


def _fit_touch(
    model: BehaviourModel,
    touch: dict[tuple[str, int], tuple[int, int]],
    touch_days: int,
    defaults: BehaviourModel,
    notes: list[str],
) -> BehaviourModel:
    if touch_days < MIN_TOUCH_DAYS:
        notes.append(
            f"pay_on_touch_day: only {touch_days} days on which a reminder reached an invoice "
            f"(at least {MIN_TOUCH_DAYS} needed to measure a reminder's effect); the defaults "
            "are kept"
        )
        return model
    payments = sum(paid for _, paid in touch.values())
    expected = sum(
        days * model.pay_probability(tier, late, None, False)
        for (tier, late), (days, _) in touch.items()
    )
    lift = round(max(0.0, (payments - expected) / touch_days), 4)
    return replace(model, pay_on_touch_day=dict.fromkeys(defaults.pay_on_touch_day, lift))


def _observed(history: list[InvoiceHistory], as_of: date) -> Implied:
    paid = [
        (h.paid_on - h.due_date).days
        for h in history
        if h.paid_on is not None
        and h.paid_on < as_of
        and (h.paid_on - h.issue_date).days < HORIZON_DAYS
    ]
    old = [h for h in history if h.issue_date + timedelta(days=HORIZON_DAYS) <= as_of]
    unpaid = [
        h for h in old if h.paid_on is None or (h.paid_on - h.issue_date).days >= HORIZON_DAYS
    ]
    return Implied(sum(paid) / len(paid) if paid else None, len(unpaid) / len(old) if old else None)
