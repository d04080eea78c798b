"""Writing behind: parts written in order on a thread of their own, and an error on either side
stopping both."""

from __future__ import annotations

import threading

import pytest

from bot.core.write_behind import WriteBehind


def test_every_part_is_written_in_order_on_another_thread() -> None:
    written: list[tuple[int, str]] = []

    def write(part: int) -> None:
        written.append((part, threading.current_thread().name))

    with WriteBehind(write) as behind:
        for part in range(50):
            behind.put(part)
    assert [part for part, _thread in written] == list(range(50))
    assert {thread for _part, thread in written} == {"write-behind"}


def test_a_writers_error_is_raised_to_the_caller_and_nothing_more_is_written() -> None:
    written: list[int] = []

    def write(part: int) -> None:
        if part == 3:
            raise ValueError("refused")
        written.append(part)

    handed: list[int] = []
    with pytest.raises(ValueError, match="refused"), WriteBehind(write, depth=1) as behind:
        for part in range(1000):
            behind.put(part)
            handed.append(part)
    assert written == [0, 1, 2]
    assert len(handed) < 1000  # the caller was stopped at a hand-over


def test_a_writers_error_on_the_last_part_is_raised_when_the_block_ends() -> None:
    def write(part: int) -> None:
        raise ValueError(f"refused {part}")

    with pytest.raises(ValueError, match="refused 0"), WriteBehind(write) as behind:
        behind.put(0)


def test_a_callers_error_drops_the_parts_not_yet_written_and_waits_for_the_writer() -> None:
    started = threading.Event()
    release = threading.Event()
    written: list[int] = []

    def write(part: int) -> None:
        started.set()
        release.wait(5)
        written.append(part)

    with pytest.raises(RuntimeError, match="bad row"), WriteBehind(write, depth=3) as behind:
        behind.put(0)
        started.wait(5)
        behind.put(1)
        behind.put(2)
        threading.Timer(0.2, release.set).start()  # part 0 ends after the caller has failed
        raise RuntimeError("bad row")
    # the part being written when the caller failed was finished; the others were dropped
    assert written == [0]
