"""A guard for RULES D5: no network call while a write transaction is open.

`WriteWatch` follows the transactions of every engine in the process (SQLAlchemy events on the
Engine class, so the engine a CLI command opens is followed too). A transaction is a write from
its first statement when it was begun for writing (`bot.core.db.WRITING`, BEGIN IMMEDIATE on
SQLite), or from its first INSERT, UPDATE or DELETE otherwise, until its commit or rollback.

The local fakes of Slack, Stripe and IMAP tell the watch of each call as it arrives
(`fake.on_call = watch.called`); a call that arrives while a write is open anywhere is a breach.
The calls come in on the fakes' own threads while the caller waits for the answer, which is why
the watch looks at every connection, not the calling thread's.

    with WriteWatch() as watch:
        slack_api.on_call = watch.called
        ...  # drive the story
    assert watch.breaches == []
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, event

from bot.core.db import WRITING

WRITES = ("INSERT", "UPDATE", "DELETE")


class WriteWatch:
    def __init__(self) -> None:
        self.calls: list[str] = []  # every network call seen, in order
        self.breaches: list[str] = []  # those made while a write was open
        self._open: dict[int, str] = {}  # id(connection) -> what it has open
        self._lock = threading.Lock()

    def called(self, what: str) -> None:
        with self._lock:
            self.calls.append(what)
            if self._open:
                self.breaches.append(f"{what} while {'; '.join(self._open.values())}")

    # --- SQLAlchemy events -----------------------------------------------------------------

    def _begun(self, connection: Connection) -> None:
        if connection.get_execution_options().get(WRITING, False):
            with self._lock:
                self._open[id(connection)] = "a write transaction was open"

    def _executing(
        self,
        connection: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if verb in WRITES and connection.in_transaction():
            with self._lock:
                self._open.setdefault(id(connection), f"a transaction held an {verb} uncommitted")

    def _ended(self, connection: Connection) -> None:
        with self._lock:
            self._open.pop(id(connection), None)

    _EVENTS = (
        ("begin", "_begun"),
        ("before_cursor_execute", "_executing"),
        ("commit", "_ended"),
        ("rollback", "_ended"),
    )

    def __enter__(self) -> Self:
        for name, method in self._EVENTS:
            event.listen(Engine, name, getattr(self, method))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for name, method in self._EVENTS:
            event.remove(Engine, name, getattr(self, method))
