"""`/ar forecast`'s answer: the cash expected week by week per currency, and how much of it rests on
the whole book's behaviour rather than the customer's own. Pure: a forecast in, mrkdwn out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol

from bot.core.money import format_money
from integrations.base.mrkdwn import Mrkdwn, join, mrkdwn


class ExpectedWeek(Protocol):
    @property
    def week_start(self) -> date: ...

    @property
    def expected(self) -> dict[str, Decimal]: ...


class Basis(Protocol):
    @property
    def basis(self) -> str: ...


class ForecastInvoice(Protocol):
    @property
    def prediction(self) -> Basis: ...


class CashForecast(Protocol):
    """What the answer needs of bot/forecasting/cash.py's Forecast."""

    @property
    def as_of(self) -> date: ...

    @property
    def weeks(self) -> Sequence[ExpectedWeek]: ...

    @property
    def invoices(self) -> Sequence[ForecastInvoice]: ...

    def open_balance(self) -> dict[str, Decimal]: ...

    @property
    def nothing_learned(self) -> str | None: ...


def forecast_text(forecast: CashForecast, show_amounts: bool) -> Mrkdwn:
    """A line a week (Slack cuts long answers between lines into sections of its size)."""
    lines = [
        mrkdwn(
            f"*Expected cash in, as of {forecast.as_of:%Y-%m-%d}* (`arbot forecast` lists each invoice)"
        )
    ]
    if not show_amounts:
        lines.append(mrkdwn("Amounts are shown to approvers and in the finance channel only."))
        return join(lines, "\n")
    if not forecast.invoices:
        lines.append(mrkdwn("No open invoices."))
        return join(lines, "\n")
    if forecast.nothing_learned:
        lines.append(mrkdwn(forecast.nothing_learned))
        return join(lines, "\n")
    currencies = sorted(forecast.open_balance())
    for week in forecast.weeks:
        amounts = " · ".join(format_money(week.expected.get(c, Decimal(0)), c) for c in currencies)
        lines.append(mrkdwn(f"• week of {week.week_start:%b %d}: ", amounts))
    expected = {
        c: sum((w.expected.get(c, Decimal(0)) for w in forecast.weeks), Decimal(0))
        for c in currencies
    }
    open_total = forecast.open_balance()
    lines.append(
        mrkdwn(
            f"In {len(forecast.weeks)} weeks: ",
            " · ".join(
                f"{format_money(expected[c], c)} of {format_money(open_total[c], c)} open"
                for c in currencies
            ),
        )
    )
    guessed = sum(1 for i in forecast.invoices if i.prediction.basis == "portfolio")
    if guessed:
        lines.append(
            mrkdwn(
                f"{guessed} of {len(forecast.invoices)} open invoices are from customers with no "
                "payment history yet: they are given the whole book's behaviour."
            )
        )
    return join(lines, "\n")
