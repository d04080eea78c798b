"""The `arbot` command line. Exit codes: 0 done, 1 something to fix (the reason is on stderr), 2 bad
usage.

Each command group lives in a module of its own; importing them here registers their commands."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import typer.main
from rich.text import Text

from bot.core import collector
from bot.core.errors import UserError

# Imported in the order `arbot --help` lists their commands.
from handlers.cli import ledger, demo, daily, serve, playbook, learning, db  # noqa: F401  # isort: skip
from handlers.cli.app import app, err


def _register_money_sources_and_workspaces() -> None:
    from handlers.cli.control import control_app
    from handlers.cli.doctor import doctor_command
    from handlers.cli.forecast import forecast_command
    from handlers.cli.money_in import import_payments_command, poll_inbox_command
    from handlers.cli.sources import connect_command, sync_command
    from handlers.cli.workspaces import workspace_app

    app.command("import-payments")(import_payments_command)
    app.command("poll-inbox")(poll_inbox_command)
    app.command("connect")(connect_command)
    app.command("sync")(sync_command)
    app.command("forecast")(forecast_command)
    app.command("doctor")(doctor_command)
    app.add_typer(control_app, name="control")
    app.add_typer(workspace_app, name="workspace")


def main(argv: list[str] | None = None) -> None:
    """Run one command; `argv` None means this process's own arguments (the `arbot` script)."""
    if argv is None:
        # What is loaded so far (Typer, Rich, the command modules) lives as long as the process:
        # the collector need not walk it again while the command loads and runs the rest. Nor
        # what the command loads until its runtime is open (bot/core/collector.py).
        gc.freeze()
        collector.held_back_while_starting()
    try:
        _command()(args=argv)
    except UserError as exc:
        _say_error(str(exc))
        sys.exit(1)
    except Exception as exc:
        if not _database_busy(exc):
            raise
        # The write that met the lock was rolled back whole: what the command had not committed
        # is not in the database, and running it again does it.
        _say_error(
            "the database is busy: another arbot (or another program writing to it) held it "
            f"for more than {_busy_seconds()} seconds, and this command's unfinished work was "
            "not written; run the command again"
        )
        sys.exit(1)
    finally:
        if argv is None:
            # The process ends with the command. Python's shutdown would walk every object
            # loaded (a hundred thousand after a database command) in several full collections,
            # a fifth of a short command's time; set aside, they are freed with the process.
            # What needs closing (the database, files) is closed by then; atexit still runs.
            gc.freeze()


@cache
def _command() -> Callable[..., Any]:
    """The command line built from its Typer definitions once per process (about 20 ms): a
    process that runs several commands (the test suite, a script importing `main`) reuses it."""
    return typer.main.get_command(app)


def _say_error(message: str) -> None:
    err().print(Text.assemble(("error:", "red"), f" {message}"), soft_wrap=True)


def _database_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection held the write lock for longer than the
    busy timeout (a second arbot importing, or a program in the middle of a write)."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError) or not isinstance(exc.orig, sqlite3.Error):
        return False
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _busy_seconds() -> str:
    from bot.core.db import SQLITE_BUSY_TIMEOUT_MS

    return f"{SQLITE_BUSY_TIMEOUT_MS / 1000:g}"


_register_money_sources_and_workspaces()

if __name__ == "__main__":
    main()
