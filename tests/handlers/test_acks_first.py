"""The hold on work behind acknowledged clicks: it waits for a quiet moment, but never longer than
its bound, so a burst is acknowledged first and no click's work is starved.

AcksFirst reads time.monotonic() and sleeps with time.sleep(); here both are a clock that moves
only when the hold sleeps, and acks arrive at set moments of it. So every wait is exact, and no
result depends on how fast (or how loaded) the machine is."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handlers import app
from handlers.app import AcksFirst


class Clock:
    """A stand-in for the `time` module: monotonic() and a sleep() that moves it, running what
    was set to happen at a moment once the clock passes it (as another thread would)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._due: list[tuple[float, Callable[[], object]]] = []

    def monotonic(self) -> float:
        return self.now

    def at(self, moment: float, action: Callable[[], object]) -> None:
        self._due.append((moment, action))
        self._due.sort(key=lambda due: due[0])

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        until = self.now + seconds
        while self._due and self._due[0][0] <= until:
            moment, action = self._due.pop(0)
            self.now = max(self.now, moment)
            action()
        self.now = until


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(app, "time", fake)
    return fake


def test_work_waits_for_the_quiet_time_after_the_last_ack(clock: Clock) -> None:
    hold = AcksFirst(quiet_seconds=0.05, bound_seconds=5)
    acked_at = hold.acked()

    hold.wait(acked_at)

    assert clock.now == pytest.approx(acked_at + 0.05)


def test_a_later_ack_pushes_the_work_back(clock: Clock) -> None:
    hold = AcksFirst(quiet_seconds=0.1, bound_seconds=5)
    first = hold.acked()
    clock.at(first + 0.06, hold.acked)  # a second click while the first one's work waits

    hold.wait(first)

    assert clock.now == pytest.approx(first + 0.16)  # 0.06 until the second ack, then 0.1 quiet


def test_a_stream_of_acks_never_holds_work_past_its_bound(clock: Clock) -> None:
    hold = AcksFirst(quiet_seconds=0.05, bound_seconds=0.2)
    first = hold.acked()
    for n in range(1, 1000):  # an ack every 10 ms for ten seconds: never quiet for 50 ms
        clock.at(first + n * 0.01, hold.acked)

    hold.wait(first)

    assert clock.now == pytest.approx(first + 0.2)  # the bound, not the never-ending stream
    assert hold.last_ack > first + 0.15  # the acks did keep coming until then
