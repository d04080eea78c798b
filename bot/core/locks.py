"""One writer at a time where it matters. SQLite's BEGIN IMMEDIATE already serialises writers; on
PostgreSQL a transaction-level advisory lock makes a ledger import, a payment and a refund wait
for each other, so none of them overwrites a balance another has just changed, and makes two
plans for one day wait for each other. Each lock is keyed by the schema too, so one workspace's
import or plan never holds up another's (bot.workspaces.registry: a schema per workspace).

`held_alone` is for work that spans a slow call made outside any transaction (a sync reads the
source, then writes what it read): it is tried, never waited for, and held until the work ends,
across processes (a session-level advisory lock on PostgreSQL, a flock on a file beside a SQLite
database, both let go by the server or the kernel when the process dies)."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

LEDGER_LOCK = "arbot ledger"
PLAN_LOCK = "arbot plan"


def schema_lock(session: Session, name: str) -> None:
    """Hold the lock `name` of this schema until the transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:name || current_schema(), 0))"),
            {"name": name},
        )


def serialise_ledger_writes(session: Session) -> None:
    schema_lock(session, LEDGER_LOCK)


_KEY = "hashtextextended(:name || current_schema(), 0)"
_IN_MEMORY: dict[tuple[str, str], threading.Lock] = {}
_IN_MEMORY_GUARD = threading.Lock()


@contextmanager
def held_alone(engine: Engine, name: str) -> Iterator[bool]:
    """Try the lock `name` of this database (and schema); yields whether it was taken. It stays
    held until the block ends, whatever the block does with transactions."""
    backend = engine.url.get_backend_name()
    database = engine.url.database or ""
    if backend == "postgresql":
        with engine.connect() as connection:
            yield from _advisory(connection, name)
    elif database and database != ":memory:" and not database.startswith("file::memory:"):
        yield from _file_lock(Path(f"{database}.{name.replace(' ', '-')}.lock"))
    else:  # an in-memory database lives in this process only
        with _IN_MEMORY_GUARD:
            lock = _IN_MEMORY.setdefault((str(engine.url), name), threading.Lock())
        taken = lock.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                lock.release()


def _advisory(connection: Connection, name: str) -> Iterator[bool]:
    taken = bool(
        connection.execute(text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": name}).scalar()
    )
    connection.commit()  # a session-level lock: no transaction stays open while it is held
    try:
        yield taken
    finally:
        if taken:
            try:
                connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": name})
                connection.commit()
            except BaseException:
                connection.invalidate()  # never back to the pool still holding the lock
                raise


def _file_lock(path: Path) -> Iterator[bool]:
    with path.open("a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
