"""The bootstrap over customers: the same data gives the same interval, a known effect on
synthetic outcomes is recovered, and "not enough data yet" is said below the thresholds."""

from __future__ import annotations

import random

import pytest

from bot.learning.bootstrap import MIN_CUSTOMERS, Difference, Part, difference, ratio


def customers(rng: random.Random, count: int, mean_days_late: float) -> list[Part]:
    """Customers with 1 to 6 paid invoices each; a customer's own habit plus each invoice's noise."""
    parts = []
    for _ in range(count):
        habit = rng.gauss(mean_days_late, 5)
        invoices = rng.randint(1, 6)
        parts.append(Part(sum(habit + rng.gauss(0, 4) for _ in range(invoices)), invoices))
    return parts


def test_the_same_data_and_seed_give_the_same_interval() -> None:
    rng = random.Random(7)
    a, b = customers(rng, 40, 10), customers(rng, 40, 16)
    first = difference(a, b)
    assert first is not None
    assert difference(a, b) == first
    assert difference(list(a), list(b)) == first
    assert difference(a, b, seed=1) != first  # the seed, not luck, makes it repeat


def test_a_known_effect_on_synthetic_outcomes_is_recovered() -> None:
    rng = random.Random(2026)
    followed, baseline = customers(rng, 120, 9.0), customers(rng, 120, 15.0)
    found = difference(followed, baseline)
    assert found is not None
    assert found.low < -6.0 < found.high  # the true difference lies inside
    assert found.high < 0  # and the interval says which way it goes
    assert found.conclusive
    assert found.effect == pytest.approx(ratio(followed) - ratio(baseline))  # type: ignore[operator]


def test_no_difference_is_not_enough_data() -> None:
    rng = random.Random(11)
    found = difference(customers(rng, 60, 12.0), customers(rng, 60, 12.0))
    assert found is not None
    assert found.low < 0 < found.high
    assert not found.conclusive


def test_fewer_customers_than_the_minimum_give_no_interval() -> None:
    rng = random.Random(3)
    few = customers(rng, MIN_CUSTOMERS - 1, 5.0)
    many = customers(rng, 50, 20.0)
    assert difference(few, many) is None
    assert difference(many, few) is None
    # Customers with nothing to count (no paid invoice) do not make up the numbers.
    padded = few + [Part(0.0, 0.0)] * 10
    assert difference(padded, many) is None
    assert difference(customers(rng, MIN_CUSTOMERS, 5.0), many) is not None


@pytest.mark.parametrize(
    ("effect", "low", "high", "conclusive"),
    [
        (6.2, 2.1, 10.4, True),  # the interval leaves 0 out; half-width 4.15 <= 6.2
        (-6.2, -10.4, -2.1, True),
        (1.5, -2.0, 5.1, False),  # contains 0
        (6.0, 0.5, 13.0, False),  # leaves 0 out, but its half-width 6.25 exceeds 6.0
        (0.0, 0.0, 0.0, False),
    ],
)
def test_the_verdict_follows_the_documented_rule(
    effect: float, low: float, high: float, conclusive: bool
) -> None:
    assert Difference(first=effect, second=0.0, low=low, high=high).conclusive is conclusive
