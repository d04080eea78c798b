"""`/ar pause` never shortens a pause already running (a promise's, or a longer one a person set):
the later end stays, and the reply says so and how to pause for less."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Event
from bot.core.runtime import Runtime
from bot.escalations import service

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

PROMISE_ENDS = datetime(2026, 3, 21, 4, 0, tzinfo=UTC)  # 18 March + 2 days' grace, New York


def _paused_until(runtime: Runtime) -> datetime | None:
    with runtime.sessions() as session:
        return session.scalars(
            select(Customer.paused_until).where(Customer.external_id == "C-2")
        ).one()


def test_a_short_pause_after_a_promise_keeps_the_promises_pause_and_says_so(
    posted: Runtime, served: Any
) -> None:
    with posted.writing() as session:
        customer_id = session.scalars(
            select(Customer.id).where(Customer.external_id == "C-2")
        ).one()
        service.promise(
            session,
            customer_id,
            date(2026, 3, 18),
            2,
            posted.clock.now(),
            timezone="America/New_York",
        )

    answer = served.command('pause C-2 1d "call on Tuesday"').json()["text"]

    assert _paused_until(posted) == PROMISE_ENDS
    assert "already paused until 2026-03-21" in answer
    assert "for a promise to pay by 2026-03-18" in answer
    assert "/ar resume C-2" in answer
    with posted.sessions() as session:
        paused = session.scalars(select(Event).where(Event.kind == "customer.paused")).one()
    assert datetime.fromisoformat(paused.payload["until"]) == PROMISE_ENDS


def test_a_shorter_pause_keeps_a_longer_one_a_person_set(posted: Runtime, served: Any) -> None:
    served.command("pause C-2 14d")

    answer = served.command("pause C-2 2d").json()["text"]

    assert _paused_until(posted) == datetime(2026, 3, 30, 14, 0, tzinfo=UTC)
    assert "already paused until 2026-03-30" in answer and "/ar resume C-2" in answer


def test_a_longer_pause_replaces_a_shorter_one(posted: Runtime, served: Any) -> None:
    served.command("pause C-2 2d")

    answer = served.command("pause C-2 14d").json()["text"]

    assert _paused_until(posted) == datetime(2026, 3, 30, 14, 0, tzinfo=UTC)
    assert "Paused reminders to" in answer and "until 2026-03-30" in answer
