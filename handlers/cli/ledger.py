"""`arbot import-csv`, `arbot aging` and `arbot status`: the ledger in, and what it says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from handlers.cli.app import AsOf, Json, app, as_of_date, err, opened_runtime, out, print_json

if TYPE_CHECKING:
    from bot.core.runtime import Runtime
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


def import_file(runtime: Runtime, path: Path) -> ImportSummary:
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv

    region = runtime.settings.phone_region
    batch = _with_progress(path, lambda tick: read_ledger_csv(path, region, on_row=tick))
    with runtime.writing() as session:
        return apply_batch(session, batch, runtime.clock.now())


def _with_progress(path: Path, work: Callable[[Callable[[], None]], T]) -> T:
    from integrations.csv_ledger import count_rows

    rows = count_rows(path) if path.is_file() else 0
    if rows < PROGRESS_FROM_ROWS or not err().is_terminal:
        return work(lambda: None)
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
        with runtime.sessions() as session:
            report = aging_report(session, day)
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
