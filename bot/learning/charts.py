"""Charts of the portfolio week by week, as PNG bytes: open balances by aging bucket (stacked),
DSO, and cash collected. Drawn with matplotlib's Agg canvas (no display, no pyplot state), in
matplotlib's default style whatever the local matplotlibrc says, always WIDTH x HEIGHT pixels.

Amounts become floats here only to place bars on a picture; every figure a person reads as a
number comes from the Decimal amounts elsewhere."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol

import matplotlib
import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.learning.comparison import WeekPoint
from bot.learning.metrics import WeekMetrics
from bot.ledger.aging import BUCKETS

WIDTH, HEIGHT, DPI = 800, 450, 100
BUCKET_COLOURS = {
    "current": "#4c9f70",
    "1-30": "#f2c14e",
    "31-60": "#f78154",
    "61-90": "#d1495b",
    "90+": "#7a1f3d",
}
LINE_COLOURS = ("#1f5f8b", "#d1495b", "#4c9f70", "#7a1f3d", "#f2a541", "#5c4d7d")
CASH_COLOUR = "#1f5f8b"
FORECAST_COLOUR = "#4c9f70"
MAX_TICK_LABELS = 13


class Week(Protocol):
    """What a chart's x axis needs of a week."""

    @property
    def last_day(self) -> date: ...


def aging_chart(weeks: Sequence[WeekMetrics], currency: str) -> bytes:
    """Open balances at the end of each week, stacked by how late they are."""

    def paint(axes: Axes) -> None:
        bottoms = [0.0] * len(weeks)
        for bucket in BUCKETS:
            heights = [float(week.aging.get(currency, {}).get(bucket, 0)) for week in weeks]
            axes.bar(
                range(len(weeks)),
                heights,
                bottom=bottoms,
                color=BUCKET_COLOURS[bucket],
                label=bucket if bucket == "current" else f"{bucket} days",
            )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        axes.yaxis.set_major_formatter(_amounts(max(bottoms, default=0.0)))
        axes.set_ylabel(currency)
        axes.legend(loc="upper left", fontsize="small", ncols=len(BUCKETS), frameon=False)
        axes.set_ylim(0, max([*bottoms, 1.0]) * 1.15)  # room for the legend above the bars

    return _draw(f"Open balances by days past due ({currency})", weeks, paint)


def dso_chart(weeks: Sequence[WeekMetrics]) -> bytes:
    """Days sales outstanding at the end of each week, one line per currency."""

    def paint(axes: Axes) -> None:
        currencies = sorted({code for week in weeks for code in week.dso})
        for index, code in enumerate(currencies):
            axes.plot(
                range(len(weeks)),
                [_days(week.dso.get(code)) for week in weeks],
                marker="o",
                color=LINE_COLOURS[index % len(LINE_COLOURS)],
                label=code,
            )
        axes.set_ylabel("days")
        axes.set_ylim(bottom=0)
        if currencies:  # above the plot, right of the title, where no line can run
            axes.legend(
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
                ncols=len(currencies),
                fontsize="small",
                frameon=False,
            )

    return _draw("Days sales outstanding", weeks, paint)


def cash_chart(weeks: Sequence[WeekMetrics], currency: str) -> bytes:
    """Payments received in each week (refunds count against it)."""

    def paint(axes: Axes) -> None:
        heights = [float(week.collected.get(currency, 0)) for week in weeks]
        axes.bar(range(len(weeks)), heights, color=CASH_COLOUR)
        axes.yaxis.set_major_formatter(_amounts(max(map(abs, heights), default=0.0)))
        axes.set_ylabel(currency)
        axes.axhline(0, color="#555555", linewidth=0.8)

    return _draw(f"Cash collected per week ({currency})", weeks, paint)


class ExpectedWeek(Week, Protocol):
    """A coming week of the cash forecast (bot/forecasting/cash.py)."""

    @property
    def expected(self) -> dict[str, Decimal]: ...


def forecast_chart(weeks: Sequence[ExpectedWeek], currency: str) -> bytes:
    """The cash expected in each coming week: each open invoice's balance times the chance it is
    paid that week, from how its customer has paid."""

    def paint(axes: Axes) -> None:
        heights = [float(week.expected.get(currency, 0)) for week in weeks]
        axes.bar(range(len(weeks)), heights, color=FORECAST_COLOUR)
        axes.yaxis.set_major_formatter(_amounts(max(heights, default=0.0)))
        axes.set_ylabel(currency)

    return _draw(f"Cash expected per week, the next {len(weeks)} ({currency})", weeks, paint)


def comparison_chart(weeks: Sequence[WeekPoint], followed: str, baseline: str) -> bytes:
    """Mean days past due at payment of the invoices paid each week, one line per group (a gap
    where a group had no payment that week)."""

    def paint(axes: Axes) -> None:
        for values, label, colour in (
            ([w.followed for w in weeks], followed, LINE_COLOURS[0]),
            ([w.baseline for w in weeks], baseline, LINE_COLOURS[1]),
        ):
            axes.plot(
                range(len(weeks)),
                [math.nan if v is None else v for v in values],
                marker="o",
                color=colour,
                label=label,
            )
        axes.axhline(0, color="#555555", linewidth=0.8)
        axes.set_ylabel("days past due at payment")
        axes.legend(
            loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize="small", frameon=False
        )

    return _draw("Days past due at payment", weeks, paint)


def _draw(title: str, weeks: Sequence[Week], paint: Callable[[Axes], None]) -> bytes:
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.set_title(title, loc="left", fontsize="medium", fontweight="bold")
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#dddddd", linewidth=0.8)
        axes.set_axisbelow(True)
        paint(axes)
        _week_ticks(axes, weeks)
        if not weeks:
            axes.text(
                0.5, 0.5, "No weeks to show", ha="center", va="center", transform=axes.transAxes
            )
        buffer = io.BytesIO()
        # No "Software" entry: the same figures give the same bytes whatever matplotlib's version.
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _week_ticks(axes: Axes, weeks: Sequence[Week]) -> None:
    step = max(1, math.ceil(len(weeks) / MAX_TICK_LABELS))
    shown = list(range(len(weeks)))[::-1][::step][::-1]  # always label the latest week
    axes.set_xticks(shown, [f"{weeks[i].last_day:%d %b}" for i in shown], fontsize="small")
    axes.set_xlabel("week ending")
    if weeks:
        axes.set_xlim(-0.6, len(weeks) - 0.4)


def _amounts(largest: float) -> FuncFormatter:
    """One unit for the whole axis, chosen by its largest amount: 1,500 / 15k / 1.5M."""
    if largest >= 1_000_000:
        return FuncFormatter(lambda value, _: f"{value / 1_000_000:,.1f}M")
    if largest >= 10_000:
        return FuncFormatter(lambda value, _: f"{value / 1_000:,.0f}k")
    return FuncFormatter(lambda value, _: f"{value:,.0f}")


def _days(value: Decimal | None) -> float:
    return float(value) if value is not None else math.nan
