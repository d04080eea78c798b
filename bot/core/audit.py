"""Appending to the audit log. Every state change writes its Event in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core.models import Event

SYSTEM = "system"


def record(
    session: Session,
    at: datetime,
    kind: str,
    *,
    actor: str = SYSTEM,
    customer_id: int | None = None,
    invoice_id: int | None = None,
    reminder_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    session.add(
        Event(
            at=at,
            actor=actor,
            kind=kind,
            customer_id=customer_id,
            invoice_id=invoice_id,
            reminder_id=reminder_id,
            payload=payload or {},
        )
    )


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk append; each dict has Event's columns."""
    if rows:
        session.execute(insert(Event.__table__), rows)  # type: ignore[arg-type]
