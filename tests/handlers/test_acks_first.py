"""The hold on work behind acknowledged clicks: it waits for a quiet moment, but never longer than
its bound, so a burst is acknowledged first and no click's work is starved."""

from __future__ import annotations

import threading
import time

from handlers.app import AcksFirst


def test_work_waits_for_the_quiet_time_after_the_last_ack() -> None:
    hold = AcksFirst(quiet_seconds=0.05, bound_seconds=5)
    acked_at = hold.acked()
    started = time.monotonic()

    hold.wait(acked_at)

    assert time.monotonic() - started >= 0.04


def test_a_later_ack_pushes_the_work_back() -> None:
    hold = AcksFirst(quiet_seconds=0.1, bound_seconds=5)
    first = hold.acked()
    timer = threading.Timer(0.06, hold.acked)
    timer.start()
    hold.wait(first)
    timer.join()

    assert time.monotonic() - first >= 0.15  # 0.06 until the second ack, then 0.1 of quiet


def test_a_stream_of_acks_never_holds_work_past_its_bound() -> None:
    hold = AcksFirst(quiet_seconds=0.05, bound_seconds=0.2)
    first = hold.acked()
    stop = threading.Event()

    def keep_acking() -> None:
        while not stop.is_set():
            hold.acked()
            time.sleep(0.01)

    stream = threading.Thread(target=keep_acking)
    stream.start()
    try:
        hold.wait(first)
        waited = time.monotonic() - first
    finally:
        stop.set()
        stream.join()

    assert 0.19 <= waited < 2  # the bound, not the never-ending stream
