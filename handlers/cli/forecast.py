"""`arbot forecast`: when each open invoice is expected to be paid, and the cash expected each week."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from handlers.cli.app import AsOf, Json, as_of_date, opened_runtime, out, print_json

if TYPE_CHECKING:
    from bot.forecasting.cash import Forecast

SHOWN_INVOICES = 50


def forecast_command(
    as_of: AsOf = None,
    weeks: Annotated[
        int, typer.Option("--weeks", help="How many weeks of expected cash (default 13).")
    ] = 13,
    as_json: Json = False,
) -> None:
    """When each open invoice is likely to be paid (learned from how each customer has paid) and
    the cash expected in each of the next weeks, per currency."""
    from bot.forecasting.cash import cash_forecast

    with opened_runtime() as runtime:
        day = as_of_date(runtime, as_of)
        with runtime.sessions() as session:
            forecast = cash_forecast(session, day, weeks, runtime.settings.timezone)
    if as_json:
        print_json(forecast.as_json())
        return
    for table in forecast_tables(forecast):
        out().print(table)
    if forecast.nothing_learned:
        out().print(forecast.nothing_learned, markup=False)


def forecast_tables(forecast: Forecast) -> list[Table]:
    from bot.core.money import format_money

    currencies = sorted(
        {c for week in forecast.weeks for c in week.expected} | set(forecast.open_balance())
    )
    weeks = Table(
        title=f"Expected cash in, by week, as of {forecast.as_of.isoformat()}",
        title_justify="left",
    )
    weeks.add_column("Week of")
    for currency in currencies:
        weeks.add_column(currency, justify="right")
    for week in forecast.weeks:
        weeks.add_row(
            week.week_start.isoformat(),
            *(format_money(week.expected.get(c, Decimal(0)), c) for c in currencies),
        )
    shown = forecast.invoices[:SHOWN_INVOICES]
    title = f"Open invoices ({len(forecast.invoices)})"
    if len(forecast.invoices) > len(shown):
        title += f", the {len(shown)} due first (--json lists all)"
    invoices = Table(title=title, title_justify="left")
    for column, justify in (
        ("Invoice", "left"),
        ("Customer", "left"),
        ("Due", "left"),
        ("Expected paid", "left"),
        ("Likely between", "left"),
        ("Paid by due+30", "right"),
        ("Based on", "left"),
        ("Balance", "right"),
    ):
        invoices.add_column(column, justify=justify)  # type: ignore[arg-type]
    for item in shown:
        p = item.prediction
        invoices.add_row(
            item.number,
            f"{item.customer_name} ({item.customer})",
            item.due_date.isoformat(),
            p.expected_pay_date.isoformat(),
            f"{p.low.isoformat()} to {p.high.isoformat() if p.high else 'later'}",
            f"{100 * p.p_paid_by_due_plus_30:.0f}%",
            "its history" if p.basis == "customer" else "the whole book (no history)",
            format_money(item.balance, item.currency),
        )
    return [weeks, invoices]
