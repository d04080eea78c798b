"""Python's cyclic garbage collector, held back during bulk work.

A plan allocates millions of short-lived objects (rows, facts, rendered messages). Left alone, the
collector runs a full collection every few hundred thousand of them, and each full collection
walks every object the process holds, the plan's and everything loaded before it: a quarter of a
100,000-invoice plan's time. During `bulk_work` the objects that existed before it are set aside
(gc.freeze: they are not walked again) and young collections run every BULK_THRESHOLD
allocations instead of every 700; cyclic garbage is still collected, only in fewer, larger passes,
so memory stays bounded. Process-wide and safe to nest or overlap: the first to enter sets it up
and the last to leave puts it back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLD = 50_000  # allocations between young collections during bulk work

_lock = threading.Lock()
_inside = 0
_before: tuple[int, int, int] = gc.get_threshold()


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
