"""The `arbot` Typer application and what every command module shares: the consoles, the
`--as-of` and `--json` options, and opening the runtime.

Command modules import what a command needs inside the command, so `arbot --help` and a command
that needs little start without loading the whole of arbot."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.core.errors import UserError

if TYPE_CHECKING:
    from bot.core.clock import Clock
    from bot.core.runtime import Runtime


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


playbook_app = typer.Typer(help="Check and manage the reminder playbook.", no_args_is_help=True)


app.add_typer(playbook_app, name="playbook")


def out() -> Console:
    """Standard output. What arbot prints carries the ledger's and the outside world's text (a
    name `Beta [old account]`, an invoice `INV-[/red]`), so a string is printed as it is: no
    Rich markup and no `:emoji:` codes, in tables and titles too. Styling is a `Text` style."""
    return Console(highlight=False, markup=False, emoji=False)


def err() -> Console:
    """Standard error, printing text as it is, as `out()` does."""
    return Console(stderr=True, markup=False, emoji=False)


AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Count days late as of this date (default: today in ARBOT_TIMEZONE).",
    ),
]


Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


@contextmanager
def opened_runtime(clock: Clock | None = None, **overrides: Any) -> Iterator[Runtime]:
    from bot.core.runtime import start
    from bot.core.settings import load_settings

    settings = load_settings(**overrides)
    if settings.workspace:
        from bot.workspaces.registry import open_runtime

        runtime = open_runtime(settings, clock=clock)
    else:
        # The main workspace's books: what open_runtime does, without loading the workspace
        # registry (and with it the whole model) that a command such as aging has no use for.
        runtime = start(settings, clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


def as_of_date(runtime: Runtime, text: str | None, option: str = "--as-of") -> date:
    """The day `option` gives (today when it gives none), held to the dates a ledger may hold: a
    typo such as 9999-12-31 would plan, escalate and count days late on a day no invoice has."""
    from bot.core.ledger_dates import date_problem  # not the sources' records: aging needs none

    if text is None:
        return runtime.today()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD") from None
    problem = date_problem(day)
    if problem:
        raise UserError(f"{option} {problem}")
    return day


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
