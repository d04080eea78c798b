"""What a simulation found: each run's figures, their spread over seeds per arm and the paired
difference from no follow-up, as plain text (which says first that the figures come from a model
and not from real customers) and as one JSON document."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bot.ledger.aging import DSO_PERIOD_DAYS
from bot.simulation.model import BehaviourModel

DISCLAIMER = (
    "These figures come from a behaviour model with assumed probabilities, not from real "
    "customers: they show what the model implies, not what your customers will do."
)
LOW, HIGH = Decimal("0.1"), Decimal("0.9")  # the spread shown: 10th to 90th percentile
LABEL_WIDTH = 28


@dataclass(frozen=True)
class RunFigures:
    """One arm's outcome on one seed."""

    collected: dict[str, Decimal]  # per currency: paid by simulated customers during the run
    dso: dict[str, Decimal | None]  # per currency, on the last day (as `arbot aging`)
    open_at_end: dict[str, Decimal]
    payments: int
    escalations: int  # accounts handed to a person (the simulation does not act for them)
    # of the invoices whose 30th day past due fell within the run, the share paid by then
    paid_by_plus_30: Decimal | None
    invoices_due_plus_30: int
    sent: dict[str, int]  # channel -> messages sent
    replies: int
    disputes: int
    billed: int

    @property
    def messages(self) -> int:
        return sum(self.sent.values())


@dataclass(frozen=True)
class Spread:
    """A figure over seeds: the median and the 10th to 90th percentile."""

    median: Decimal
    low: Decimal
    high: Decimal
    seeds: int  # how many seeds had the figure

    @classmethod
    def of(cls, values: list[Decimal]) -> Spread | None:
        if not values:
            return None
        ordered = sorted(values)
        return cls(
            _quantile(ordered, Decimal("0.5")),
            _quantile(ordered, LOW),
            _quantile(ordered, HIGH),
            len(ordered),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "median": str(self.median),
            "p10": str(self.low),
            "p90": str(self.high),
            "seeds": self.seeds,
        }


@dataclass(frozen=True)
class Figure:
    """One figure of one arm: its spread, and the spread of its difference from no follow-up
    on the same seeds (None for no follow-up itself)."""

    spread: Spread | None
    versus_none: Spread | None


@dataclass(frozen=True)
class Bench:
    start: date
    end: date
    days: int
    seeds: list[int]
    customers: int
    invoices_at_start: int
    model: BehaviourModel
    arms: list[tuple[str, str]]  # (key, label), no follow-up first
    runs: dict[str, list[RunFigures]]  # per arm key, in the order of `seeds`

    def currencies(self) -> list[str]:
        codes: set[str] = set()
        for runs in self.runs.values():
            for run in runs:
                codes |= set(run.collected) | set(run.dso)
        return sorted(codes)

    def figures(self, key: str) -> dict[str, Figure]:
        """Every figure of one arm, by name: `cash_collected:USD`, `dso:USD`,
        `paid_by_due_plus_30`, `messages_sent`."""
        none_key = self.arms[0][0]
        result: dict[str, Figure] = {}
        for code in self.currencies():
            result[f"cash_collected:{code}"] = self._figure(
                key, none_key, lambda r, c=code: r.collected.get(c, Decimal(0))
            )
            result[f"dso:{code}"] = self._figure(key, none_key, lambda r, c=code: r.dso.get(c))
        result["paid_by_due_plus_30"] = self._figure(key, none_key, lambda r: r.paid_by_plus_30)
        result["messages_sent"] = self._figure(key, none_key, lambda r: Decimal(r.messages))
        return result

    def _figure(self, key: str, none_key: str, pick: Any) -> Figure:
        values = [pick(run) for run in self.runs[key]]
        spread = Spread.of([v for v in values if v is not None])
        if key == none_key:
            return Figure(spread, None)
        base = [pick(run) for run in self.runs[none_key]]
        paired = [
            v - b for v, b in zip(values, base, strict=True) if v is not None and b is not None
        ]
        return Figure(spread, Spread.of(paired))


def describe(bench: Bench) -> str:
    """The bench as plain text, the disclaimer first."""
    seeds = bench.seeds
    seed_text = (
        f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({seeds[0]} to {seeds[-1]})"
    )
    lines = [
        f"Simulated {bench.days} days ({bench.start.isoformat()} to {bench.end.isoformat()}) on "
        f"{seed_text}: {bench.customers} customers, {bench.invoices_at_start} invoices at the start.",
        DISCLAIMER,
        "Every arm runs on the same simulated customers, invoices and random draws for a seed. "
        "Each figure is the median over the seeds with the 10th to 90th percentile; "
        "'vs no follow-up' is the difference from no follow-up on the same seed, with its "
        "median and 10th to 90th percentile.",
        "",
        "Arms: " + "; ".join(f"{key} = {label}" for key, label in bench.arms) + ".",
    ]
    figures = {key: bench.figures(key) for key, _ in bench.arms}
    for name in next(iter(figures.values())):
        kind, _, code = name.partition(":")
        lines += [
            "",
            f"{_TITLES[kind] + (f' ({code})' if code else ''):{LABEL_WIDTH}}"
            f"{'median':>16}{'10th to 90th':>34}{'vs no follow-up':>42}",
        ]
        for key, _label in bench.arms:
            figure = figures[key][name]
            lines.append(
                f"  {key:{LABEL_WIDTH - 2}}"
                f"{_show(kind, figure.spread.median if figure.spread else None):>16}"
                f"{_range(kind, figure.spread):>34}"
                f"{_versus(kind, figure.versus_none):>42}".rstrip()
            )
    lines += [
        "",
        f"DSO as `arbot aging` counts it on the last day: open balance / the last "
        f"{DSO_PERIOD_DAYS} days' invoicing x {DSO_PERIOD_DAYS}. Paid by due + 30: of the "
        "invoices whose 30th day past due fell within the run, the share paid by then.",
    ]
    for key, label in bench.arms[1:]:
        runs = bench.runs[key]
        lines.append(
            f"{label}, per seed (median): replies {_median_int([r.replies for r in runs])}, "
            f"disputes {_median_int([r.disputes for r in runs])}, accounts handed to a person "
            f"{_median_int([r.escalations for r in runs])} (a person does nothing in the "
            "simulation)."
        )
    return "\n".join(lines)


def as_json(bench: Bench) -> dict[str, Any]:
    """The bench as one JSON document: amounts and figures as decimal strings, dates ISO 8601."""
    arms = []
    for key, label in bench.arms:
        figures: dict[str, Any] = {"cash_collected": {}, "dso": {}}
        for name, figure in bench.figures(key).items():
            kind, _, code = name.partition(":")
            shown = {
                **(figure.spread.as_json() if figure.spread else {"median": None}),
                "vs_no_follow_up": figure.versus_none.as_json() if figure.versus_none else None,
            }
            if code:
                figures[kind][code] = shown
            else:
                figures[kind] = shown
        arms.append(
            {
                "key": key,
                "label": label,
                "figures": figures,
                "runs": [
                    _run_json(seed, run)
                    for seed, run in zip(bench.seeds, bench.runs[key], strict=True)
                ],
            }
        )
    return {
        "start": bench.start.isoformat(),
        "end": bench.end.isoformat(),
        "days": bench.days,
        "seeds": bench.seeds,
        "customers": bench.customers,
        "invoices_at_start": bench.invoices_at_start,
        "model": asdict(bench.model),
        "arms": arms,
        "disclaimer": DISCLAIMER,
    }


_TITLES = {
    "cash_collected": "Cash collected",
    "dso": "DSO on the last day",
    "paid_by_due_plus_30": "Paid by due + 30",
    "messages_sent": "Messages sent",
}


def _run_json(seed: int, run: RunFigures) -> dict[str, Any]:
    return {
        "seed": seed,
        "cash_collected": {code: str(amount) for code, amount in run.collected.items()},
        "dso": {code: None if dso is None else str(dso) for code, dso in run.dso.items()},
        "paid_by_due_plus_30": None if run.paid_by_plus_30 is None else str(run.paid_by_plus_30),
        "messages_sent": run.sent,
        "payments": run.payments,
        "invoices_billed": run.billed,
        "replies": run.replies,
        "disputes": run.disputes,
        "escalations": run.escalations,
    }


def _quantile(ordered: list[Decimal], q: Decimal) -> Decimal:
    """The q-quantile of sorted values, interpolating between neighbours."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _show(kind: str, value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    sign = "+" if signed else ""
    if kind == "cash_collected":
        return f"{value:{sign},.2f}"
    if kind == "paid_by_due_plus_30":
        return f"{value * 100:{sign}.1f}" + (" pts" if signed else "%")
    return f"{value:{sign}.1f}"


def _range(kind: str, spread: Spread | None, signed: bool = False) -> str:
    if spread is None:
        return "n/a"
    return f"{_show(kind, spread.low, signed)} to {_show(kind, spread.high, signed)}"


def _versus(kind: str, spread: Spread | None) -> str:
    if spread is None:
        return ""
    return f"{_show(kind, spread.median, True)} ({_range(kind, spread, True)})"


def _median_int(values: list[int]) -> str:
    spread = Spread.of([Decimal(v) for v in values])
    return "0" if spread is None else f"{spread.median.normalize():f}"
