"""`arbot import-payments`: a bank feed of 10,000 payments matched against a book of 100,000 open
invoices and applied, with every database write, against its floor: what any import must do, read
the open invoices it matches against (one plain-driver SELECT) and write the payments (the csv
module and one bulk INSERT, COPY on PostgreSQL, of the same payment rows).

Each run reads the file, matches, applies and flushes every write in one transaction, then rolls
it back (untimed), so every run starts from the same book."""

from __future__ import annotations

from collections import Counter

from benchmarks.books import import_book
from benchmarks.databases import database, open_runtime
from benchmarks.floors import csv_bulk_insert, select_open_invoices
from benchmarks.options import Options
from benchmarks.reconcile import ledger_rows, payment_rows, write_payments
from benchmarks.results import Result, interleaved
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
        finally:
            runtime.close()
    last = summaries[-1]
    shown = Counter({"applied": last.applied, "to review": last.to_review})
    return [
        Result(
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
    ]


def run(options: Options) -> list[Result]:
    return [r for kind in options.databases for r in measure(kind, options)]
