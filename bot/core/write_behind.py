"""Writing behind the work that makes the rows: each part is handed to a thread of its own, which
writes it while the caller makes the next.

A database's own work on a write (SQLite's inserts, in C, without the GIL; PostgreSQL's server
process) then runs beside the caller's Python instead of after it. One connection is used by one
thread at a time: the caller must not touch it from the moment it starts handing parts over until
the block ends, when every part handed over has been written or dropped. An error on either side
stops both: a writer's error is raised to the caller at its next hand-over, or when the block
ends; a caller's error drops the parts not yet written, waits for the one being written, and goes
on up. Either way the caller's transaction is rolled back by whoever opened it, so the write stays
all-or-nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()  # the caller's last word: no more parts
_WAIT = 0.05  # seconds between looks at the writer while the queue is full


class WriteBehind(Generic[T]):
    """`with WriteBehind(write) as behind: behind.put(part)`: `write(part)` runs on a thread of
    its own, in the order the parts were put, at most `depth` of them waiting."""

    def __init__(self, write: Callable[[T], None], depth: int = 2) -> None:
        self._write = write
        self._parts: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._dropping = threading.Event()  # the caller failed: write nothing more
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)

    def __enter__(self) -> WriteBehind[T]:
        self._thread.start()
        return self

    def put(self, part: T) -> None:
        """Hand `part` over; raises the writer's error if it has failed."""
        while True:
            self._raise_writers_error()
            try:
                self._parts.put(part, timeout=_WAIT)
                return
            except queue.Full:
                continue

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            self._dropping.set()
        self._parts.put(_END)  # never blocks for long: the writer takes every part, even failed
        self._thread.join()
        if error is None:
            self._raise_writers_error()

    def _raise_writers_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (part := self._parts.get()) is not _END:
            if self._error is not None or self._dropping.is_set():
                continue  # taken and dropped, so that the caller is never left waiting
            try:
                self._write(part)  # type: ignore[arg-type]
            except BaseException as exc:  # raised again on the caller's side
                self._error = exc
