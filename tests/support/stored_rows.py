"""Every row of a database, taken and stored again: a state that took many statements to reach
(a plan made and posted) is written into another empty, migrated database in a few."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, text

from bot.core.models import Base
from bot.core.runtime import Runtime


@dataclass
class StoredRows:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # where each id sequence stood (PostgreSQL's sequences, SQLite's sqlite_sequence)
    sequences: list[tuple[str, int]] = field(default_factory=list)


def take_rows(runtime: Runtime) -> StoredRows:
    stored = StoredRows()
    with runtime.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            stored.tables[table.name] = [
                dict(row._mapping) for row in connection.execute(select(table))
            ]
        if connection.dialect.name == "postgresql":
            found = connection.execute(
                text(
                    "SELECT sequencename, last_value FROM pg_sequences"
                    " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
            )
        elif connection.execute(
            text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        ).first():
            found = connection.execute(text("SELECT name, seq FROM sqlite_sequence"))
        else:
            found = None
        stored.sequences = [(str(name), int(value)) for name, value in found or []]
    return stored


def put_rows(runtime: Runtime, stored: StoredRows) -> None:
    """Into an empty database: the rows, parents first, and the sequences where they stood."""
    with runtime.engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            if stored.tables[table.name]:
                connection.execute(insert(table), stored.tables[table.name])
        for name, value in stored.sequences:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT setval(CAST(:name AS regclass), :value)"),
                    {"name": name, "value": value},
                )
            else:
                connection.execute(
                    text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name}
                )
                connection.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :value)"),
                    {"name": name, "value": value},
                )
