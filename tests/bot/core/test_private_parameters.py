"""A failing statement names no customer's data: its error, and the log line written of it, hold
the SQL but neither the values bound to it nor the row PostgreSQL quotes back in its DETAIL, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from bot.core.models import Customer, InboundMessage
from bot.core.runtime import Runtime

ADDRESS = "maria.garcia@ridgeline.example"
WORDS = "we dispute invoice INV-1001, the goods arrived damaged"
NAME = "Ridgeline Outfitters (private)"


def _message_of_no_known_channel(session: Session, runtime: Runtime) -> None:
    session.add(
        InboundMessage(
            channel="pigeon",  # refused by the channel's CHECK constraint
            received_at=runtime.clock.now(),
            sender=ADDRESS,
            subject="Re: INV-1001",
            raw=f"From: {ADDRESS}\n\n{WORDS}",
            text=WORDS,
        )
    )


def _the_same_customer_twice(session: Session, runtime: Runtime) -> None:
    now = runtime.clock.now()
    for _ in range(2):  # (source, external_id) is unique
        session.add(
            Customer(source="csv", external_id=NAME, name=NAME, created_at=now, updated_at=now)
        )
        session.flush()


@pytest.mark.parametrize("failing", [_message_of_no_known_channel, _the_same_customer_twice])
def test_a_failing_statement_names_no_customer_data(
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    failing: Callable[[Session, Runtime], None],
) -> None:
    with pytest.raises(StatementError) as failed, runtime.writing() as session:
        failing(session, runtime)
        session.flush()
    with caplog.at_level(logging.ERROR):
        logging.getLogger("arbot").error("storing failed", exc_info=failed.value)

    told = str(failed.value) + "\n" + caplog.text
    assert "[SQL: INSERT INTO" in told  # what failed is still named
    assert "parameters hidden" in told
    for private in (ADDRESS, WORDS, NAME, "pigeon"):
        assert private not in told
