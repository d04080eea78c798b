"""A benchmark's result beside its floor and its targets, the timing helpers every benchmark uses,
and the table `python -m benchmarks` prints.

A floor is the least any implementation of the same work must do (read the same rows through the
plain driver, write them with one bulk statement, send on a bare smtplib loop), measured in the
same run on the same machine: on a busy machine absolute times move, ratios much less."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

SECONDS = "s"
PER_SECOND = "/s"  # a rate: more is better
MIB = "MiB"
CALLS = "calls/reminder"
MISSED = {MIB: "TOO BIG", CALLS: "TOO MANY"}  # what a missed target is called, by unit


@dataclass(frozen=True)
class Result:
    name: str
    database: str  # "SQLite", "PostgreSQL", or "" when no database is involved
    size: str
    value: float  # in `unit`
    unit: str = SECONDS
    floor: float | None = None  # the floor's figure, in the same unit, from the same run
    floor_name: str = ""
    ratio_target: float | None = None  # value / floor at most this (a rate: at least this)
    target: float | None = None  # value at most this (a rate: at least this)
    note: str = ""
    shown_only: bool = False  # a figure to read beside the line above it, never a target

    @property
    def more_is_better(self) -> bool:
        return self.unit == PER_SECOND

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor <= 0:
            return None
        return self.value / self.floor

    def misses(self) -> list[str]:
        """Which targets this result misses (empty when it meets every one)."""
        missed = []
        ratio = self.ratio
        if self.ratio_target is not None and ratio is not None:
            missed += ["ratio"] if self._beyond(ratio, self.ratio_target) else []
        if self.target is not None:
            missed += ["target"] if self._beyond(self.value, self.target) else []
        return missed

    def _beyond(self, figure: float, limit: float) -> bool:
        return figure < limit if self.more_is_better else figure > limit


@dataclass(frozen=True)
class Skipped:
    name: str
    database: str
    why: str


def figure(value: float, unit: str) -> str:
    if unit == SECONDS:
        return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"
    if unit == PER_SECOND:
        return f"{value:,.0f}/s"
    if unit == MIB:
        return f"{value:,.0f} MiB"
    return f"{value:.2f} {unit}"


def target_text(result: Result) -> str:
    if result.shown_only:
        return "not a target"
    sign = "≥" if result.more_is_better else "≤"
    parts = []
    if result.ratio_target is not None:
        parts.append(f"{sign} {result.ratio_target:g}x floor")
    if result.target is not None:
        parts.append(f"{sign} {figure(result.target, result.unit)}")
    return ", ".join(parts) or "shown"


def median_of(
    runs: int, work: Callable[[], object], before: Callable[[], object] | None = None
) -> float:
    """The median wall time of `runs` calls of `work`; `before` (untimed) runs ahead of each."""
    timings = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def interleaved(
    runs: int,
    work: Callable[[], object],
    floor: Callable[[], object],
    before: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Medians of `runs` timings of `work` and of its `floor`, taken in turns (floor, work, floor,
    work, ...) so that a machine busy for a while slows both alike. `before` (untimed) runs ahead
    of each `work`. Each timing starts from a collected heap (untimed gc.collect()): what one
    leaves for the garbage collector, the next does not pay for, as in a process of its own."""
    work_times, floor_times = [], []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        floor()
        floor_times.append(time.perf_counter() - started)
        if before is not None:
            before()
        gc.collect()
        started = time.perf_counter()
        work()
        work_times.append(time.perf_counter() - started)
    return statistics.median(work_times), statistics.median(floor_times)


def print_table(title: str, results: list[Result], skipped: list[Skipped]) -> bool:
    """Print the results; True when every one meets its targets."""
    table = Table(title=title, title_justify="left")
    for column in ("benchmark", "database", "size", "measured", "floor", "x floor", "target", ""):
        table.add_column(
            column, justify="right" if column in ("measured", "floor", "x floor") else "left"
        )
    ok = True
    for result in results:
        missed = result.misses()
        ok &= not missed
        ratio = result.ratio
        table.add_row(
            result.name,
            result.database,
            result.size,
            figure(result.value, result.unit),
            f"{figure(result.floor, result.unit)} {result.floor_name}".strip()
            if result.floor is not None
            else "",
            f"{ratio:.2f}x" if ratio is not None else "",
            target_text(result),
            ""
            if result.shown_only
            else "ok"
            if not missed
            else MISSED.get(result.unit, "TOO SLOW"),
        )
    for skip in skipped:
        table.add_row(skip.name, skip.database, "", "", "", "", "", f"skipped: {skip.why}")
    console = Console(width=200)
    console.print(table)
    for result in results:
        if result.note:
            console.print(
                f"[bold]{result.name}[/bold] ({result.database or 'no database'}): {result.note}",
                highlight=False,
            )
    return ok
