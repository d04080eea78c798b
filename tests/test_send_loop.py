"""The send loop runs its tick again and again, survives a failing tick, and stops when told."""

from __future__ import annotations

import threading

from scheduler.send_loop import SendLoop
from tests.slack_requests import wait_for


def test_the_loop_ticks_survives_a_failure_and_stops() -> None:
    ticks: list[int] = []
    done = threading.Event()

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("SMTP down")
        if len(ticks) >= 3:
            done.set()

    loop = SendLoop(tick, interval_seconds=0.01)
    loop.start()
    wait_for(done.is_set)
    loop.stop()
    count = len(ticks)
    assert count >= 3
    assert not loop._thread.is_alive()
