"""A message's redraws never go back in time, even when a drawing outlasts its lease (Slack's rate
limits can hold one chat.update longer than LEASE): another worker then takes the message over,
and the drawing that lost its lease must neither free the new holder's lease nor be the last
state drawn."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import message_versions
from bot.core.clock import FixedClock
from bot.core.models import MessageVersion
from bot.core.runtime import Runtime
from tests.support.slack_requests import PATIENCE

CHANNEL, TS = "C0FINANCE", "1700000000.000100"


def test_a_drawing_that_outlasts_its_lease_is_never_the_last_one_shown(runtime: Runtime) -> None:
    """Worker A reads the state and is held up past its lease; worker B takes the message over,
    draws the newer state and is done; then A's older drawing reaches Slack. The newest state is
    drawn again after it."""
    state = {"now": "approved"}
    shown: list[str] = []
    start = message_versions.REAL_TIME.now()
    later = FixedClock(start + 2 * message_versions.LEASE)

    def draw_b(session: Session) -> None:
        shown.append(state["now"])

    def draw_a(session: Session) -> None:
        seen = state["now"]  # read after the claim
        if not shown:  # held up: the state changes, and B redraws it past A's lease
            state["now"] = "cancelled (paid)"
            assert message_versions.draw_newest(runtime.engine, CHANNEL, TS, draw_b, later)
        shown.append(seen)  # then A's drawing lands

    assert message_versions.draw_newest(runtime.engine, CHANNEL, TS, draw_a, FixedClock(start))
    assert shown[:2] == ["cancelled (paid)", "approved"]
    assert shown[-1] == "cancelled (paid)"
    with runtime.sessions() as session:
        version = session.scalars(select(MessageVersion)).one()
        assert version.drawing_since is None and version.drawn >= version.wanted


def test_a_drawer_that_lost_its_lease_leaves_the_new_holder_its_lease(runtime: Runtime) -> None:
    """A's lease lapsed and B took the message over: A's end, while B still draws, must not free
    it, or a third redraw would draw it beside B and either could land last."""
    start = message_versions.REAL_TIME.now()
    later = FixedClock(start + 2 * message_versions.LEASE)
    b_drawing, b_may_end = threading.Event(), threading.Event()
    beside_b: list[str] = []

    def draw_b(session: Session) -> None:
        b_drawing.set()
        assert b_may_end.wait(PATIENCE)

    b = threading.Thread(
        target=message_versions.draw_newest, args=(runtime.engine, CHANNEL, TS, draw_b, later)
    )

    def draw_a(session: Session) -> None:
        b.start()  # A's lease lapses while it draws: B takes the message over
        assert b_drawing.wait(PATIENCE)

    try:
        message_versions.draw_newest(runtime.engine, CHANNEL, TS, draw_a, FixedClock(start))
        message_versions.draw_newest(
            runtime.engine, CHANNEL, TS, lambda session: beside_b.append("drawn"), later
        )
    finally:
        b_may_end.set()
        b.join(PATIENCE)
    assert beside_b == []
    with runtime.sessions() as session:
        version = session.scalars(select(MessageVersion)).one()
        assert version.drawing_since is None and version.drawn >= version.wanted
