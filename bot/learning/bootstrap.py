"""A difference between two groups of customers with its 95% confidence interval, by bootstrap
over customers.

Every figure compared here is a ratio of sums over a group's customers: days past due at
payment is (sum of days over paid invoices) / (paid invoices), the share paid by +30 is (paid by
then) / (reached +30), DSO is receivables / sales x 91, cash per customer-week is cash / weeks.
Each customer brings its own numerator and denominator, and resampling customers (not invoices)
keeps one customer's invoices together, so a customer with many invoices cannot make the
interval look narrower than the number of customers allows.

Each resample draws, with replacement, as many customers as the group has, in both groups
independently; the interval is the 2.5th and 97.5th percentiles of the resampled differences.
The generator is seeded (SEED), so the same data always gives the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEED = 20260316
RESAMPLES = 2000
LEVEL = 0.95
MIN_CUSTOMERS = 5  # a group with fewer customers behind a figure gives no interval
CELLS = 2_000_000  # customers x resamples drawn at a time (bounds the memory used)


@dataclass(frozen=True, slots=True)
class Part:
    """One customer's share of a ratio."""

    numerator: float
    denominator: float


@dataclass(frozen=True, slots=True)
class Difference:
    """first - second, and the interval around it."""

    first: float
    second: float
    low: float
    high: float

    @property
    def effect(self) -> float:
        return self.first - self.second

    @property
    def conclusive(self) -> bool:
        """Whether the data says which way the difference goes and roughly how far: the
        interval leaves 0 out and its half-width is no more than the difference itself. Else
        "not enough data yet"."""
        return not (self.low <= 0 <= self.high) and (self.high - self.low) / 2 <= abs(self.effect)


def ratio(parts: Sequence[Part]) -> float | None:
    denominator = sum(p.denominator for p in parts)
    if denominator <= 0:
        return None
    return sum(p.numerator for p in parts) / denominator


def counted(parts: Sequence[Part]) -> int:
    """Customers that weigh in the figure (a denominator above zero)."""
    return sum(1 for p in parts if p.denominator > 0)


def difference(
    first: Sequence[Part],
    second: Sequence[Part],
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Difference | None:
    """ratio(first) - ratio(second) with its bootstrap interval; None when either group has
    fewer than MIN_CUSTOMERS customers behind its figure."""
    a, b = ratio(first), ratio(second)
    if a is None or b is None or min(counted(first), counted(second)) < MIN_CUSTOMERS:
        return None
    rng = np.random.default_rng(seed)
    spread = _resampled(first, rng, resamples) - _resampled(second, rng, resamples)
    spread = spread[~np.isnan(spread)]
    if spread.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(spread, [tail, 100 - tail])
    return Difference(first=a, second=b, low=float(low), high=float(high))


def _resampled(parts: Sequence[Part], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The ratio of each of `resamples` resamples of the customers (NaN when a resample drew
    only customers with nothing to count)."""
    numerators = np.array([p.numerator for p in parts], dtype=float)
    denominators = np.array([p.denominator for p in parts], dtype=float)
    size = len(parts)
    out = np.empty(resamples)
    step = max(1, CELLS // size)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        picks = rng.integers(0, size, size=(rows, size))
        tops, bottoms = numerators[picks].sum(axis=1), denominators[picks].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + rows] = np.where(bottoms > 0, tops / bottoms, np.nan)
    return out
