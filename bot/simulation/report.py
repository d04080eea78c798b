"""What a simulation found: each run's figures, the comparison of the two runs, and the plain-text
printout, which says first that the figures come from a model and not from real customers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bot.ledger.aging import DSO_PERIOD_DAYS
from bot.simulation.model import BehaviourModel

DISCLAIMER = (
    "These figures come from a behaviour model with assumed probabilities, not from real "
    "customers: they show what the model implies, not what your customers will do."
)


@dataclass(frozen=True)
class RunFigures:
    """One run's outcome, per currency."""

    collected: dict[str, Decimal]  # paid by simulated customers during the run
    dso: dict[str, Decimal | None]  # days sales outstanding on the last day (as `arbot aging`)
    open_at_end: dict[str, Decimal]
    payments: int
    escalations: int  # accounts handed to a person (the simulation does not act for them)


@dataclass(frozen=True)
class SimulationResult:
    start: date
    end: date
    days: int
    seed: int
    customers: int
    invoices_at_start: int
    invoices_billed: int
    model: BehaviourModel
    follow_up: RunFigures
    no_follow_up: RunFigures
    sent: dict[str, int]  # channel -> reminders sent in the follow-up run
    replies: int
    disputes: int

    def collected_difference(self) -> dict[str, Decimal]:
        codes = sorted(set(self.follow_up.collected) | set(self.no_follow_up.collected))
        return {
            c: self.follow_up.collected.get(c, Decimal(0))
            - self.no_follow_up.collected.get(c, Decimal(0))
            for c in codes
        }

    def dso_difference(self) -> dict[str, Decimal | None]:
        result: dict[str, Decimal | None] = {}
        for code in sorted(set(self.follow_up.dso) | set(self.no_follow_up.dso)):
            with_, without = self.follow_up.dso.get(code), self.no_follow_up.dso.get(code)
            result[code] = None if with_ is None or without is None else with_ - without
        return result


def describe(result: SimulationResult) -> str:
    """The result as plain text, the disclaimer first."""
    lines = [
        f"Simulated {result.days} days ({result.start.isoformat()} to {result.end.isoformat()}), "
        f"seed {result.seed}: {result.customers} customers, {result.invoices_at_start} invoices "
        f"at the start, {result.invoices_billed} billed during the run.",
        DISCLAIMER,
        "",
        f"{'':28}{'with follow-up':>18}{'no follow-up':>18}{'difference':>18}",
    ]
    for code, difference in result.collected_difference().items():
        lines.append(
            f"{'Cash collected (' + code + ')':28}"
            f"{_money(result.follow_up.collected.get(code)):>18}"
            f"{_money(result.no_follow_up.collected.get(code)):>18}"
            f"{_money(difference, signed=True):>18}"
        )
    for code, days_fewer in result.dso_difference().items():
        lines.append(
            f"{'DSO on the last day (' + code + ')':28}"
            f"{_days(result.follow_up.dso.get(code)):>18}"
            f"{_days(result.no_follow_up.dso.get(code)):>18}"
            f"{_days(days_fewer, signed=True):>18}"
        )
    sent = ", ".join(f"{count} by {channel}" for channel, count in result.sent.items()) or "none"
    lines += [
        f"(DSO as `arbot aging` counts it: open balance / the last {DSO_PERIOD_DAYS} days' "
        f"invoicing x {DSO_PERIOD_DAYS}.)",
        "",
        f"Reminders sent in the follow-up run: {sent}. Customers wrote back {result.replies} "
        f"times (a person would answer; the model changes nothing for a reply) and disputed "
        f"{result.disputes} times. {result.follow_up.escalations} accounts went to a person, "
        "who does nothing in the simulation.",
    ]
    return "\n".join(lines)


def _money(amount: Decimal | None, signed: bool = False) -> str:
    if amount is None:
        return "-"
    return f"{amount:+,.2f}" if signed else f"{amount:,.2f}"


def _days(value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if signed else f"{value:.1f}"
