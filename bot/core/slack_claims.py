"""A short claim on a row a process is about to post to Slack (an escalation, a payment review):
taken in its own write transaction, so none is open while Slack answers, and so that no other
process posts the same row meanwhile. A claim older than CLAIM_LEASE was lost (the process died):
the row may be claimed again. A post Slack refused gives its claim back for the next sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session

from bot.core.runtime import Runtime

CLAIM_LEASE = timedelta(minutes=10)


def unclaimed(model: Any, now: datetime) -> ColumnElement[bool]:
    """Nobody is posting it, or whoever claimed it is long gone."""
    column = model.slack_claimed_at
    return or_(column.is_(None), column < now - CLAIM_LEASE)


def claim(
    session: Session, model: Any, row_id: int, now: datetime, *still: ColumnElement[bool]
) -> bool:
    """Claim the row while it still matches `still` (e.g. open, not yet posted) and nobody else
    holds it. True when this process has it."""
    taken = session.execute(
        update(model)
        .where(model.id == row_id, unclaimed(model, now), *still)
        .values(slack_claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def give_back(runtime: Runtime, model: Any, row_id: int) -> None:
    """Slack refused the post: the next sweep may claim the row again at once."""
    with runtime.writing() as session:
        session.execute(
            update(model)
            .where(model.id == row_id)
            .values(slack_claimed_at=None)
            .execution_options(synchronize_session=False)
        )
