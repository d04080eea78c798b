"""How import and the stored plan grow with the book: 10k, 30k, 100k and 300k invoices by default
(`python -m benchmarks --only plan --scaling`), each beside its floor, with the growth exponent
between one size and the next (1.0 is linear)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from benchmarks.books import book_csv, import_book
from benchmarks.databases import database, open_runtime
from benchmarks.floors import csv_bulk_insert, select_plan_rows
from benchmarks.options import Options
from benchmarks.planner import forget_plan, plan
from benchmarks.results import interleaved


def _once(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(kind: str, options: Options, invoices: int) -> tuple[float, float, float, float]:
    """Import (once, into an empty database) and the stored plan (median), with their floors."""
    path = book_csv(options.folder, invoices)
    with database(kind, options.folder, f"scaling-{invoices}") as url:
        runtime = open_runtime(url)
        try:
            import_floor = _once(lambda: csv_bulk_insert(url, path))
            imported = _once(lambda: import_book(runtime, path))
            plan(runtime, dry_run=True)
            planned, plan_floor = interleaved(
                options.runs,
                lambda: plan(runtime, dry_run=False),
                lambda: select_plan_rows(url),
                before=lambda: forget_plan(runtime),
            )
        finally:
            runtime.close()
    return imported, import_floor, planned, plan_floor


def run(options: Options) -> None:
    table = Table(
        title=f"Scaling: import once, the stored plan the median of {options.runs}",
        title_justify="left",
    )
    for column in (
        "database",
        "invoices",
        "import",
        "x floor",
        "growth",
        "plan",
        "x floor",
        "growth",
    ):
        table.add_column(column, justify="left" if column == "database" else "right")
    for kind in options.databases:
        previous: tuple[int, float, float] | None = None
        for invoices in options.scaling:
            imported, import_floor, planned, plan_floor = measure(kind, options, invoices)
            growth = ("", "")
            if previous is not None:
                size_ratio = math.log(invoices / previous[0])
                growth = (
                    f"{math.log(imported / previous[1]) / size_ratio:.2f}",
                    f"{math.log(planned / previous[2]) / size_ratio:.2f}",
                )
            table.add_row(
                kind,
                f"{invoices:,}",
                f"{imported:.2f} s",
                f"{imported / import_floor:.1f}x",
                growth[0],
                f"{planned:.2f} s",
                f"{planned / plan_floor:.1f}x",
                growth[1],
            )
            previous = (invoices, imported, planned)
    Console(width=200).print(table)
