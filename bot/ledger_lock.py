"""One writer of balances at a time. SQLite's BEGIN IMMEDIATE already serialises writers; on
PostgreSQL a transaction-level advisory lock makes a ledger import, a payment and a refund wait
for each other, so none of them overwrites a balance another has just changed."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

LEDGER_LOCK_KEY = 0x6172626F74_01  # "arbot" + 1


def serialise_ledger_writes(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY})
