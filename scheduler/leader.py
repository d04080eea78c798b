"""Which process runs the scheduled jobs.

On PostgreSQL any number of replicas run; the one holding the lease in `scheduler_leases` is the
leader (`DatabaseLease`). It renews the lease every poll; a replica that sees it unchanged for a
whole lease takes it over. So a leader that dies, hangs, is frozen or loses the database is
replaced within the lease and two polls (15 s and two of 5 s by default), and one that wakes after
losing it finds so before it runs another leader's job.

On SQLite one process runs the jobs: it holds an exclusive lock on `<database file>.scheduler.lock`
(flock, released by the kernel when the process ends), and a second process is told who has it."""

from __future__ import annotations

import fcntl
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from bot.core.db import WRITING, make_engine, normalise_url
from bot.core.models import SchedulerLease

log = logging.getLogger(__name__)
LOCK_NAME = "arbot.scheduler"
LEASE_SECONDS = 15.0
POLL_SECONDS = 5.0
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def elapsed_seconds() -> float:
    """Seconds on a clock that never goes back and, on Linux, keeps counting while the machine
    is suspended (CLOCK_BOOTTIME): only spans between two of its readings mean anything."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


def this_instance() -> str:
    """How this process is named in logs, scheduled runs and lock files: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    # True: poll, and take over when the leader stops renewing (PostgreSQL). False: decided once.
    takes_over: bool

    def acquire(self) -> bool:
        """True while this process leads: takes the lead when free, renews it when held."""
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


class DatabaseLease:
    """Leadership as a lease in `scheduler_leases`, for PostgreSQL (it works on any database).

    The leader renews the row at every poll (`beat` + 1, on the condition that `term` is still
    the one it took). Another replica reads the row at every poll and notes, on its own clock,
    when it last saw it change; once it has seen it unchanged for a whole lease (or let go), it
    takes it over with a compare-and-set on what it saw (`term` + 1). The leader counts its
    lease from before it asked to renew and trusts it for one poll less than the lease, so it
    has stopped leading before anyone may take over.

    Only spans are measured, each on one machine's elapsed-time clock (`clock`), so replicas'
    wall clocks need not agree and ARBOT_NOW does not move it. The lease outlasts the leader's
    connection: a frozen leader (SIGSTOP, a GC pause, a swap storm, a debugger) whose kernel
    still answers TCP is replaced all the same, and one that wakes finds the term changed."""

    takes_over = True

    def __init__(
        self,
        url: str,
        instance: str,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = elapsed_seconds,
    ) -> None:
        if not 0 < 2 * poll_seconds <= lease_seconds:
            raise ValueError(f"a lease of {lease_seconds}s needs polls of at most half of it")
        self.instance = instance
        self.lease_seconds = lease_seconds
        self.trust_seconds = lease_seconds - poll_seconds  # how long a renewal is trusted
        self._clock = clock
        self._engine: Engine = _lease_engine(url, instance)
        self._writing = self._engine.execution_options(**{WRITING: True})
        self._term: int | None = None  # the term this replica took, while the row may be its own
        self._seen: tuple[int, int] | None = None  # (term, beat) last read of another's lease
        self._seen_at = 0.0  # on `clock`, just after it was first read

    def acquire(self) -> bool:
        asked_at = self._clock()
        try:
            with self._writing.begin() as connection:
                leads = self._renew(connection) or self._watch_or_take(connection)
        except IntegrityError:
            return False  # another replica made the row first
        except DBAPIError as exc:
            if self._term is not None:
                log.error("could not renew the scheduler lease (%s)", exc.orig)
            return False  # if the row is still this replica's next time, it renews it
        late = self._clock() - asked_at
        if leads and late >= self.trust_seconds:
            log.warning("the scheduler lease was renewed too late to trust (%.1fs)", late)
            return False
        return leads

    def _renew(self, connection: Connection) -> bool:
        if self._term is None:
            return False
        renewed = connection.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LOCK_NAME, SchedulerLease.term == self._term)
            .values(beat=SchedulerLease.beat + 1, holder=self.instance, lease_ms=self._lease_ms())
        ).rowcount
        if not renewed:
            self._term = None  # another replica took it over
        return bool(renewed)

    def _watch_or_take(self, connection: Connection) -> bool:
        row = connection.execute(
            select(
                SchedulerLease.holder,
                SchedulerLease.term,
                SchedulerLease.beat,
                SchedulerLease.lease_ms,
            ).where(SchedulerLease.name == LOCK_NAME)
        ).first()
        read_at = self._clock()  # after the read, so after the renewal it saw
        if row is None:
            connection.execute(
                insert(SchedulerLease).values(
                    name=LOCK_NAME, holder=self.instance, term=1, beat=0, lease_ms=self._lease_ms()
                )
            )
            self._term = 1
            return True
        if (row.term, row.beat) != self._seen:
            self._seen, self._seen_at = (row.term, row.beat), read_at
        # A holder with a longer lease than ours (another configuration) is given all of it.
        lease = max(self.lease_seconds, row.lease_ms / 1000)
        if row.holder is not None and read_at - self._seen_at < lease:
            return False
        taken = connection.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == LOCK_NAME,
                SchedulerLease.term == row.term,
                SchedulerLease.beat == row.beat,
            )
            .values(holder=self.instance, term=row.term + 1, beat=0, lease_ms=self._lease_ms())
        ).rowcount
        if taken:
            self._term = row.term + 1
        return bool(taken)

    def _lease_ms(self) -> int:
        return math.ceil(self.lease_seconds * 1000)

    def holder(self) -> str | None:
        try:
            with self._engine.connect() as connection:
                return connection.execute(
                    select(SchedulerLease.holder).where(SchedulerLease.name == LOCK_NAME)
                ).scalar()
        except DBAPIError:
            return None

    def release(self) -> None:
        """Let the lease go, so another replica takes it at its next poll."""
        if self._term is not None:
            try:
                with self._writing.begin() as connection:
                    connection.execute(
                        update(SchedulerLease)
                        .where(SchedulerLease.name == LOCK_NAME, SchedulerLease.term == self._term)
                        .values(holder=None)
                    )
            except DBAPIError as exc:  # it lapses by itself
                log.warning("could not let the scheduler lease go (%s)", exc.orig)
            self._term = None
        self._engine.dispose()


def _lease_engine(url: str, instance: str) -> Engine:
    if make_url(normalise_url(url)).get_backend_name() != "postgresql":
        return make_engine(url, poolclass=NullPool)
    return make_engine(
        url,
        pool_size=1,
        connect_args={
            "application_name": f"arbot scheduler {instance}"[:63],
            "connect_timeout": 10,
            # A renewal that the network swallowed fails within seconds, not minutes.
            "tcp_user_timeout": 10_000,
            "keepalives": 1,
            "keepalives_idle": 20,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )


def leadership_for(
    database_url: str,
    instance: str,
    lease_seconds: float = LEASE_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> Leadership:
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "postgresql":
        return DatabaseLease(database_url, instance, lease_seconds, poll_seconds)
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory:"):
        return AlwaysLeader()
    return FileLock(Path(url.database + ".scheduler.lock").absolute(), instance)
