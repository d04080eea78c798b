"""One writer at a time where it matters. SQLite's BEGIN IMMEDIATE already serialises writers; on
PostgreSQL a transaction-level advisory lock makes a ledger import, a payment and a refund wait
for each other, so none of them overwrites a balance another has just changed, and makes two
plans for one day wait for each other. Each lock is keyed by the schema too, so one workspace's
import or plan never holds up another's (bot.workspaces.registry: a schema per workspace)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

LEDGER_LOCK = "arbot ledger"
PLAN_LOCK = "arbot plan"


def schema_lock(session: Session, name: str) -> None:
    """Hold the lock `name` of this schema until the transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:name || current_schema(), 0))"),
            {"name": name},
        )


def serialise_ledger_writes(session: Session) -> None:
    schema_lock(session, LEDGER_LOCK)
