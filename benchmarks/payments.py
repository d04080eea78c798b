"""`arbot import-payments`: a bank feed of 10,000 payments matched against a book of 100,000 open
invoices and applied, with every database write, against its floor: what any import must do, read
the open invoices it matches against (one plain-driver SELECT) and write the payments (the csv
module and one bulk INSERT, COPY on PostgreSQL, of the same payment rows).

Each run reads the file, matches, applies and flushes every write in one transaction, then rolls
it back (untimed), so every run starts from the same book."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchmarks import schema_rows
from benchmarks.books import import_book
from benchmarks.databases import database, open_runtime
from benchmarks.floors import csv_bulk_insert, select_open_invoices
from benchmarks.options import Options
from benchmarks.reconcile import ledger_rows, payment_rows, write_payments
from benchmarks.results import Result, interleaved
from bot.core.runtime import Runtime
from bot.ledger.sample import write_csv
from bot.payments.bank_import import BankImportSummary, import_payments
from integrations.csv_payments import read_payments

RATIO, SECONDS = 4.0, 5.0


def measure(kind: str, options: Options) -> list[Result]:
    ledger = ledger_rows(invoices=options.invoices)
    book = write_csv(options.folder / f"payments-book-{options.invoices}.csv", ledger)
    feed = write_payments(
        options.folder / f"feed-{options.payments}.csv", payment_rows(ledger, options.payments)
    )
    summaries: list[BankImportSummary] = []
    with database(kind, options.folder, "payments") as url:
        runtime = open_runtime(url)
        try:
            import_book(runtime, book)

            def work() -> None:
                payments = read_payments(feed)
                with runtime.writes() as session:
                    summaries.append(
                        import_payments(session, payments, feed.name, runtime.clock.now())
                    )
                    session.flush()
                    session.rollback()

            def floor_work() -> None:
                select_open_invoices(url)
                csv_bulk_insert(url, feed)

            seconds, floor = interleaved(options.runs, work, floor_work)
            written = rows_of_an_import(runtime, url, feed)
            last = summaries[-1]
            shown = Counter({"applied": last.applied, "to review": last.to_review})
            line = Result(
                "import-payments",
                kind,
                f"{options.payments:,} payments, {options.invoices:,} open invoices",
                seconds,
                floor=floor,
                floor_name="SELECT open invoices, csv + bulk insert",
                ratio_target=RATIO,
                target=SECONDS,
                note=", ".join(f"{n:,} {what}" for what, n in shown.items())
                + "; timed up to the last write, then rolled back.",
            )
            alone = schema_rows.figures(line, url, written, options.runs)
        finally:
            runtime.close()
    return [line, *alone]


def rows_of_an_import(runtime: Runtime, url: str, feed: Path) -> schema_rows.Written:
    """The rows one more import of `feed` (untimed) writes, read back inside its transaction
    before it is rolled back."""
    before = schema_rows.snapshot_of(url)
    with runtime.writes() as session:
        import_payments(session, read_payments(feed), feed.name, runtime.clock.now())
        session.flush()
        driver = session.connection().connection.dbapi_connection
        written = schema_rows.written_since(driver, before)
        session.rollback()
    return written


def run(options: Options) -> list[Result]:
    return [r for kind in options.databases for r in measure(kind, options)]
