"""The order of a tier's cards in the plan: the touch likely to bring the most cash forward first.

A reminder's expected cash effect is the sum, over the invoices it covers, of the balance times
the probability that the invoice would *not* be paid within EFFECT_DAYS without a touch (from the
payment model, bot/forecasting). arbot has no per-customer measure yet of how much a touch lifts
that probability, so the lift is taken as the same share for everyone: the order is then by the
money a touch today can move sooner. A customer who pays within days anyway comes after one whose
balance would otherwise wait.

Amounts in different currencies are not compared (there is no exchange rate here): each card
counts in the currency of its largest balance, the day's most common currency comes first, and
within a currency cards go by expected effect, largest first. The model is learned once per plan
and each card costs a few binary searches, so the order stays cheap at 100,000 invoices."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from bot.forecasting.history import payment_records
from bot.forecasting.model import Learner, PaymentModel
from bot.planning.facts import CustomerFacts
from bot.planning.planner import PlanItem

EFFECT_DAYS = (
    14  # a touch today is judged by what it brings within two weeks (the ladder's spacing)
)
_ZERO, _ONE, _MICRO = Decimal(0), Decimal(1), Decimal("0.000001")


def expected_effect(
    item: PlanItem, model: PaymentModel, unlikely: dict[float, Decimal] | None = None
) -> tuple[str, Decimal, Decimal]:
    """(currency, balance not expected within EFFECT_DAYS without a touch, balance) for one
    card, in the currency of its largest balance. `unlikely`: 1 - P as a Decimal for each P
    met so far (a plan meets a few hundred), filled in as it goes."""
    by_currency: dict[str, Decimal] = {}
    waiting: dict[str, Decimal] = {}
    factors = {} if unlikely is None else unlikely
    customer_id = item.customer.id
    brought_forward = model.brought_forward
    for due in item.due:
        invoice = due.invoice
        soon = brought_forward(customer_id, invoice.due_date, EFFECT_DAYS)
        factor = factors.get(soon)
        if factor is None:
            factor = factors[soon] = _ONE - Decimal(soon).quantize(_MICRO)
        currency, balance = invoice.currency, invoice.balance
        if currency in by_currency:
            by_currency[currency] += balance
            waiting[currency] += balance * factor
        else:
            by_currency[currency] = _ZERO + balance
            waiting[currency] = _ZERO + balance * factor
    if not by_currency:
        return "", Decimal(0), Decimal(0)
    if len(by_currency) == 1:
        [(currency, total)] = by_currency.items()
        return currency, waiting[currency], total
    currency = max(by_currency, key=lambda c: (by_currency[c], c))
    return currency, waiting[currency], by_currency[currency]


def by_cash_effect(items: list[PlanItem], model: PaymentModel) -> list[PlanItem]:
    """`items` reordered: the most common currency's first, then largest expected effect first,
    then (when history expects both paid soon anyway) the larger balance; further ties keep the
    plan's order. Tiers are kept apart where the cards are posted."""
    unlikely: dict[float, Decimal] = {}
    effects = [expected_effect(item, model, unlikely) for item in items]
    common = Counter(currency for currency, _, _ in effects)
    rank = {c: n for n, (c, _) in enumerate(sorted(common.items(), key=lambda p: (-p[1], p[0])))}
    order = sorted(
        range(len(items)), key=lambda i: (rank[effects[i][0]], -effects[i][1], -effects[i][2], i)
    )
    return [items[i] for i in order]


class CashEffectOrder:
    """The plan's order, learned while the plan reads its customers: the paid invoices are read
    first, then each open invoice the plan reads is counted as it goes by (none is kept)."""

    def __init__(self, session: Session, day: date, timezone: str) -> None:
        self.day = day
        self.learner = Learner(day, payment_records(session, day, timezone, paid_only=True))

    def see(self, customer: CustomerFacts) -> None:
        day = self.day
        self.learner.add_open_dues(
            customer.id, [i.due_date for i in customer.invoices if i.issue_date <= day]
        )

    def apply(self, items: list[PlanItem]) -> list[PlanItem]:
        return by_cash_effect(items, self.learner.model())
