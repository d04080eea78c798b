"""Which process runs the scheduled jobs.

On PostgreSQL any number of replicas run; the one holding a session-level advisory lock, taken
with pg_try_advisory_lock on a connection of its own kept open, is the leader. When it dies its
session ends, PostgreSQL releases the lock, and the next replica to poll takes it over.

On SQLite one process runs the jobs: it holds an exclusive lock on `<database file>.scheduler.lock`
(flock, released by the kernel when the process ends), and a second process is told who has it."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from bot.core.db import make_engine, normalise_url

log = logging.getLogger(__name__)
LOCK_NAME = "arbot.scheduler"


def this_instance() -> str:
    """How this process is named in logs, scheduled runs and lock files: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    # True: poll, and take over when the leader dies (PostgreSQL). False: decided once at start.
    takes_over: bool

    def acquire(self) -> bool:
        """True while this process leads: takes the lock when free, checks it when held."""
        ...

    def holder(self) -> str | None:
        """Who leads instead, when that can be told (host:pid for arbot processes)."""
        ...

    def release(self) -> None: ...


class AlwaysLeader:
    """An in-memory database lives in one process: that process leads."""

    takes_over = False

    def acquire(self) -> bool:
        return True

    def holder(self) -> str | None:
        return None

    def release(self) -> None:
        pass


class FileLock:
    """An exclusive flock on a file beside the SQLite database; it names its holder inside."""

    takes_over = False

    def __init__(self, path: Path, instance: str) -> None:
        self.path = path
        self.instance = instance
        self._file: IO[str] | None = None

    def __str__(self) -> str:
        return f"the lock file {self.path}"

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.instance}\n")
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str | None:
        try:
            named = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return named or None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class PostgresLock:
    """pg_try_advisory_lock on a dedicated connection. The key is derived from the database and
    schema, so arbot installations sharing a server never block each other."""

    takes_over = True

    def __init__(self, url: str, instance: str) -> None:
        self.instance = instance
        self._engine: Engine = make_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # idle, never "idle in transaction"
            connect_args={
                "application_name": f"arbot scheduler {instance}"[:63],
                "connect_timeout": 10,
                # A leader whose network went away is noticed within about a minute.
                "keepalives": 1,
                "keepalives_idle": 20,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
        self._connection: Connection | None = None
        self._key: int | None = None
        self._held = False

    def acquire(self) -> bool:
        try:
            return self._check_or_take()
        except DBAPIError as exc:
            if self._held:
                log.error("lost the scheduler lock: its connection failed (%s)", exc.orig)
            self._drop()
            return False

    def _check_or_take(self) -> bool:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._key = self._connection.execute(
                text("SELECT hashtextextended(:name || current_database() || current_schema(), 0)"),
                {"name": LOCK_NAME},
            ).scalar_one()
        if self._held:
            self._connection.execute(text("SELECT 1"))  # the session, and so the lock, lives
            return True
        self._held = bool(
            self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar_one()
        )
        return self._held

    def holder(self) -> str | None:
        if self._connection is None or self._key is None:
            return None
        classid, objid = (self._key >> 32) & 0xFFFFFFFF, self._key & 0xFFFFFFFF
        try:
            return self._connection.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid = CAST(:classid AS oid) AND l.objid = CAST(:objid AS oid) "
                    "AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                ),
                {"classid": classid, "objid": objid},
            ).scalar()
        except DBAPIError:
            return None

    def _drop(self) -> None:
        self._held = False
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):  # already gone, and the lock with it
                self._connection.close()
            self._connection = None

    def release(self) -> None:
        self._drop()  # ending the session releases the lock
        self._engine.dispose()


def leadership_for(database_url: str, instance: str) -> Leadership:
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "postgresql":
        return PostgresLock(database_url, instance)
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory:"):
        return AlwaysLeader()
    return FileLock(Path(url.database + ".scheduler.lock").absolute(), instance)
