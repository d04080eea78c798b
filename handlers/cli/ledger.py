"""`arbot import-csv`, `arbot aging` and `arbot status`: the ledger in, and what it says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from handlers.cli.app import AsOf, Json, app, as_of_date, err, opened_runtime, out, print_json

if TYPE_CHECKING:
    from bot.core.runtime import Runtime
    from bot.ledger.file_imports import UnchangedFile
    from bot.ledger.upsert import ImportSummary


PROGRESS_FROM_ROWS = 5000


T = TypeVar("T")


@app.command("import-csv")
def import_csv(
    path: Annotated[
        Path,
        typer.Argument(help="The ledger CSV: one row per invoice (see docs/reference/formats.md)."),
    ],
) -> None:
    """Import invoices from a ledger CSV. A file with any bad row imports nothing."""
    from handlers.cli.tables import import_summary_lines

    with opened_runtime() as runtime:
        summary = import_file(runtime, path)
    for line in import_summary_lines(summary):
        out().print(line, markup=False)


def import_file(runtime: Runtime, path: Path) -> ImportSummary | UnchangedFile:
    """Import the ledger CSV at `path`, unless it is the file last imported, read with the same
    settings into a ledger nothing has changed since (bot/ledger/file_imports.py): that import
    would write nothing, and the file is not read."""
    from bot.ledger import file_imports
    from bot.ledger.bulk import cycles_collected_after
    from integrations.csv_ledger import SOURCE

    settings = file_imports.reading_settings(
        runtime.settings.phone_region, runtime.settings.timezone
    )
    digest = _digest(path)
    if digest is not None:
        with runtime.sessions() as session:
            last = file_imports.unchanged_since(session, SOURCE, digest, settings)
            if last is not None:
                return file_imports.UnchangedFile(path.name, last.imported_at)
    # The cycle collector is held off for the reading and the writing together, and the batch is
    # let go before it is back: its first collection then walks what outlives the import, not the
    # hundreds of thousands of objects of a whole book still alive.
    with cycles_collected_after():
        return _read_and_apply(runtime, path, settings, digest)


def _read_and_apply(
    runtime: Runtime, path: Path, settings: str, digest: str | None
) -> ImportSummary:
    from bot.ledger import file_imports
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import SOURCE, read_ledger_csv

    region = runtime.settings.phone_region
    # a paid_date is checked against the business's today and stored in its timezone
    today, zone = runtime.today(), runtime.settings.timezone
    batch = _with_progress(
        path, lambda tick: read_ledger_csv(path, region, on_row=tick, today=today, timezone=zone)
    )
    # A file changed while it was read is not recorded: its digest may not be what was read.
    recorded = digest if digest is not None and _digest(path) == digest else None
    with runtime.writing() as session:
        now = runtime.clock.now()
        # a record the screening would take out fails the file as a bad row does: nothing written
        summary = apply_batch(session, batch, now, all_or_nothing=True)
        if recorded is not None:
            file_imports.record_import(session, SOURCE, path.name, recorded, settings, now)
        return summary


def _digest(path: Path) -> str | None:
    """The file's digest; None when it cannot be read (reading it then says why)."""
    from bot.ledger.file_imports import file_digest

    try:
        return file_digest(path)
    except OSError:
        return None


def _with_progress(path: Path, work: Callable[[Callable[[], None]], T]) -> T:
    from integrations.csv_ledger import count_rows

    if not err().is_terminal or not path.is_file():
        return work(lambda: None)
    rows = count_rows(path)
    if rows < PROGRESS_FROM_ROWS:
        return work(lambda: None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("Checking rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task("check", total=rows)
        return work(lambda: progress.advance(task))


@app.command()
def aging(as_of: AsOf = None, as_json: Json = False) -> None:
    """Open balances by how late they are (current, 1-30, 31-60, 61-90, 90+ days), per currency."""
    from bot.ledger.aging import aging_report
    from handlers.cli.tables import aging_table

    with opened_runtime() as runtime:
        day = as_of_date(runtime, as_of)
        with runtime.engine.connect() as connection:  # plain reads: the ORM is not loaded
            report = aging_report(connection, day)
    if as_json:
        print_json(report.as_json())
    else:
        out().print(aging_table(report))


@app.command()
def status(
    customer: Annotated[str, typer.Argument(help="Customer id or name, e.g. C-00012 or 'acme'.")],
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """Everything about one customer: open invoices, aging, contacts and history."""
    from bot.ledger.status import account_status
    from handlers.cli.tables import status_tables

    with opened_runtime() as runtime:
        day = as_of_date(runtime, as_of)
        with runtime.sessions() as session:
            doc = account_status(session, customer, day)
    if as_json:
        print_json(doc)
        return
    for renderable in status_tables(doc):
        out().print(renderable)
