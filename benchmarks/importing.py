"""`arbot import-csv` of a new book into an empty database, and of the same file again (nothing
changed), against their floors: the csv module and one bulk INSERT (COPY on PostgreSQL) of the
same rows for the first, reading the file for the second. Then the aging query on that book."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

from benchmarks import schema_rows
from benchmarks.books import TODAY, book_csv, import_book, size_text
from benchmarks.databases import database, open_runtime
from benchmarks.floors import csv_bulk_insert, read_csv
from benchmarks.options import Options
from benchmarks.results import Result, interleaved
from bot.core.runtime import Runtime
from bot.ledger.aging import aging_report

NEW_RATIO, NEW_SECONDS = 3.0, 10.0
UNCHANGED_RATIO = 1.5
AGING_SECONDS = 1.0


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(kind: str, options: Options, invoices: int) -> list[Result]:
    path = book_csv(options.folder, invoices)
    size = size_text(invoices)
    new, new_floor = [], []
    with ExitStack() as stack:
        runtimes = []
        for number in range(options.runs):
            url = stack.enter_context(database(kind, options.folder, f"import-{invoices}-{number}"))
            runtimes.append((url, open_runtime(url)))  # migrated before the clock starts
        # A migrated database as each run's was before its import, which the rows it wrote are
        # written into again.
        again = stack.enter_context(database(kind, options.folder, f"import-{invoices}-again"))
        open_runtime(again).close()
        before = schema_rows.snapshot_of(again)
        for url, runtime in runtimes:
            new_floor.append(_timed(lambda: csv_bulk_insert(url, path)))  # noqa: B023
            new.append(_timed(lambda: import_book(runtime, path)))  # noqa: B023
        url, runtime = runtimes[-1]
        written = schema_rows.written_into(url, before)
        unchanged, unchanged_floor = interleaved(
            options.runs, lambda: import_book(runtime, path), lambda: read_csv(path)
        )
        aging = min(_timed(lambda: aging_report_of(runtime)) for _ in range(options.runs))
        for _url, opened in runtimes:
            opened.close()
        line = Result(
            "import-csv, new book",
            kind,
            size,
            statistics.median(new),
            floor=statistics.median(new_floor),
            floor_name="csv + bulk insert",
            ratio_target=NEW_RATIO,
            target=NEW_SECONDS,
        )
        alone = schema_rows.figures(line, again, written, options.runs)
    return [
        line,
        *alone,
        Result(
            "import-csv, same file again",
            kind,
            size,
            unchanged,
            floor=unchanged_floor,
            floor_name="read the file",
            ratio_target=UNCHANGED_RATIO,
        ),
        Result("aging report (best run)", kind, size, aging, target=AGING_SECONDS),
    ]


def aging_report_of(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        report = aging_report(session, TODAY)
    assert report.currencies["USD"].invoice_count > 0


def run(options: Options) -> list[Result]:
    return [r for kind in options.databases for r in measure(kind, options, options.invoices)]
