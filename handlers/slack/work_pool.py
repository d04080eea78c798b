"""A thread pool that can be waited on until it is idle: work it runs may hand on more work to it
(a click's work asks for a redraw, which runs on the same pool), so a pool that is stopping waits
until nothing is queued or running before it takes no more, instead of refusing the follow-ups
of work it already had."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class WorkPool(Executor):
    def __init__(self, threads: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._idle:
            future = self._pool.submit(fn, *args, **kwargs)  # raises once shut down
            self._pending += 1
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def finish(self) -> None:
        """Wait until nothing is queued or running (follow-ups included), then take no more."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
            self._pool.shutdown(wait=False)  # refuses submissions from here on
        self._pool.shutdown(wait=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
