"""The `arbot` command line. Exit codes: 0 done, 1 something to fix (the reason is on stderr), 2 bad usage."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot import migrate
from bot.aging import aging_report, overdue_invoices
from bot.db import make_engine
from bot.errors import UserError
from bot.ledger import ImportSummary, apply_batch
from bot.runtime import Runtime, start
from bot.sample_ledger import sample_rows, write_csv
from bot.settings import load_settings
from bot.status import account_status
from bot.tables import aging_table, import_summary_lines, overdue_table, status_tables
from integrations.csv_ledger import count_rows, read_ledger_csv

PROGRESS_FROM_ROWS = 5000
DEMO_MARKER = ".arbot-demo"  # only a folder holding this is ever deleted by `arbot demo`

app = typer.Typer(
    name="arbot",
    help=(
        "arbot follows up on unpaid invoices for you. It reads your ledger, works out who should "
        "get a friendly reminder, and shows you what is overdue.\n\n"
        "Start with `arbot demo` to see it on sample data; no set-up needed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Look after the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True)


T = TypeVar("T")

AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Count days late as of this date (default: today in ARBOT_TIMEZONE).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv)
    except UserError as exc:
        err().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)


@contextmanager
def _runtime(**overrides: Any) -> Iterator[Runtime]:
    runtime = start(load_settings(**overrides))
    try:
        yield runtime
    finally:
        runtime.close()


def _as_of(runtime: Runtime, text: str | None) -> date:
    if text is None:
        return runtime.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is not a date; write it as YYYY-MM-DD") from None


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


@app.command("import-csv")
def import_csv(
    path: Annotated[Path, typer.Argument(help="The ledger CSV: one row per invoice (see README).")],
) -> None:
    """Import invoices from a ledger CSV. A file with any bad row imports nothing."""
    with _runtime() as runtime:
        summary = _import_file(runtime, path)
    for line in import_summary_lines(summary):
        out().print(line, markup=False)


def _import_file(runtime: Runtime, path: Path) -> ImportSummary:
    batch = _with_progress(path, lambda tick: read_ledger_csv(path, on_row=tick))
    with runtime.writing() as session:
        return apply_batch(session, batch, runtime.clock.now())


def _with_progress(path: Path, work: Callable[[Callable[[], None]], T]) -> T:
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
    with _runtime() as runtime:
        day = _as_of(runtime, as_of)
        with runtime.sessions() as session:
            report = aging_report(session, day)
    if as_json:
        _print_json(report.as_json())
    else:
        out().print(aging_table(report))


@app.command()
def status(
    customer: Annotated[str, typer.Argument(help="Customer id or name, e.g. C-00012 or 'acme'.")],
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """Everything about one customer: open invoices, aging, contacts and history."""
    with _runtime() as runtime:
        day = _as_of(runtime, as_of)
        with runtime.sessions() as session:
            doc = account_status(session, customer, day)
    if as_json:
        _print_json(doc)
        return
    for renderable in status_tables(doc):
        out().print(renderable)


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its ledger (recreated each run).")
    ] = Path("arbot-demo"),
) -> None:
    """See arbot on a sample ledger: no accounts, credentials or network needed."""
    marker = folder / DEMO_MARKER
    if folder.exists():
        if any(folder.iterdir()) and not marker.exists():
            raise UserError(f"{folder} exists and is not an arbot demo folder; pick another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    marker.write_text("Made by `arbot demo`, which deletes and rebuilds this folder.\n")
    with _runtime(database_url=f"sqlite:///{folder / 'arbot.db'}") as runtime:
        today = runtime.today()
        ledger = write_csv(folder / "sample-ledger.csv", sample_rows(today))
        out().rule("[bold]arbot demo[/bold]")
        out().print(f"Sample ledger for {today.isoformat()}: {ledger}")
        summary = _import_file(runtime, ledger)
        for line in import_summary_lines(summary):
            out().print(line, markup=False)
        with runtime.sessions() as session:
            report = aging_report(session, today)
            overdue = overdue_invoices(session, today)
        out().print()
        out().print(aging_table(report))
        out().print()
        out().print(overdue_table(overdue, limit=25))
    out().print()
    out().print(
        f"Try: [bold]DATABASE_URL=sqlite:///{folder}/arbot.db arbot status "
        f"{overdue[0].customer_id if overdue else 'C-00001'}[/bold]",
        highlight=False,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (arbot also does this itself when it starts)."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        applied = migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if applied:
        out().print(f"Database upgraded from {before or 'empty'} to {after}.")
    else:
        out().print(f"Database already up to date ({after}).")
