"""The work threads wait, when stopping, for work handed on by work they already had."""

from __future__ import annotations

import threading

import pytest

from handlers.slack.work_pool import WorkPool
from tests.support.slack_requests import PATIENCE


def test_finishing_waits_for_follow_ups_then_takes_no_more() -> None:
    pool = WorkPool(2, "test-work")
    gate = threading.Event()
    ran: list[str] = []

    def last() -> None:
        ran.append("redraw")

    def first() -> None:
        gate.wait()
        ran.append("click")
        pool.submit(last)  # handed on while the pool is finishing

    pool.submit(first)
    finishing = threading.Thread(target=pool.finish)
    finishing.start()
    gate.set()
    finishing.join(timeout=PATIENCE)
    assert not finishing.is_alive()
    assert ran == ["click", "redraw"]
    with pytest.raises(RuntimeError):
        pool.submit(last)
