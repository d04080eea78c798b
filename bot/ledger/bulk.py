"""Bulk statements for a ledger import: rows in chunks well inside the drivers' parameter limits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

CHUNK = 5000  # rows per bulk statement; keeps parameter lists well inside driver limits


def core_table(model: type[Any]) -> Table:
    """The Core table: bulk inserts through it are batched by the driver (executemany)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def bulk_update(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows):
        session.execute(update(model), chunk)
