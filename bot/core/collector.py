"""Python's cyclic garbage collector, held back during bulk work.

A plan allocates millions of short-lived objects (rows, facts, rendered messages). Left alone, the
collector runs a full collection every few hundred thousand of them, and each full collection
walks every object the process holds, the plan's and everything loaded before it: a quarter of a
100,000-invoice plan's time. During `bulk_work` the objects that existed before it are set aside
(gc.freeze: they are not walked again) and young collections run every BULK_THRESHOLD
allocations instead of every 700; cyclic garbage is still collected, only in fewer, larger passes,
so memory stays bounded. Process-wide and safe to nest or overlap: the first to enter sets it up
and the last to leave puts it back.

A command's process is held back the same way while it starts (`held_back_while_starting`, from
the `arbot` entry point, until `started`: the runtime is open): what it loads then (modules,
classes, the settings, the engine) lives as long as the process and almost none of it is garbage
(about a thousand objects of the hundred thousand `arbot aging` loads), yet the collector walked
it every 700 allocations, a young collection 150 times."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLD = 50_000  # allocations between young collections during bulk work
# Allocations between young collections while a command starts: more than any command's start-up
# (`arbot aging` about 100,000) and still a bound for one that never opens a runtime.
START_THRESHOLD = 250_000

_lock = threading.Lock()
_inside = 0
_before: tuple[int, int, int] = gc.get_threshold()
_starting = False
_before_start: tuple[int, int, int] = _before


@contextmanager
def bulk_work() -> Iterator[None]:
    global _inside, _before
    with _lock:
        if _inside == 0:
            _before = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(BULK_THRESHOLD, _before[1], _before[2])
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                gc.set_threshold(*_before)
                gc.unfreeze()


def held_back_while_starting() -> None:
    """Young collections every START_THRESHOLD allocations until `started`. Only a process that
    runs one command calls it (the `arbot` entry point): a process that runs several (the tests,
    a script) keeps its own settings."""
    global _starting, _before_start
    with _lock:
        if _starting or _inside:
            return
        _starting = True
        _before_start = gc.get_threshold()
        gc.set_threshold(START_THRESHOLD, _before_start[1], _before_start[2])


def started() -> None:
    """The process has loaded what it runs on: that is set aside (gc.freeze), so no collection
    walks it again, and the collector runs as before the start. Without a start held back,
    nothing is done."""
    global _starting, _before
    with _lock:
        if not _starting:
            return
        _starting = False
        gc.freeze()
        if _inside:  # bulk work under way keeps its threshold and puts this one back after it
            _before = _before_start
        else:
            gc.set_threshold(*_before_start)
