"""Writing many rows at once through the driver itself: COPY on PostgreSQL, one `executemany` on
SQLite, in the session's own transaction. Each value is converted by its column's own type, as
SQLAlchemy would convert it; what is skipped is SQLAlchemy's work per row (a plan writes hundreds
of thousands of rows, and on PostgreSQL a multi-row INSERT of that size is mostly spent parsing
its own parameters). Also `new_ids`: primary keys taken before the rows are written, so that rows
which point at each other can be written without reading ids back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.orm import Session


def _processors(session: Session, table: Table, columns: Sequence[str]) -> list[Any]:
    dialect = session.get_bind().dialect
    return [table.c[name].type._cached_bind_processor(dialect) for name in columns]


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT `rows` (tuples of values in the order of `columns`) into `table`."""
    processors = _processors(session, table, columns)
    # Most values repeat (the plan's instant, its day, a step's key): each is converted once.
    converters: list[tuple[int, Any, dict[Any, Any]]] = [
        (i, p, {}) for i, p in enumerate(processors) if p is not None
    ]

    def converted(row: Sequence[Any]) -> tuple[Any, ...]:
        if not converters:
            return tuple(row)
        values = list(row)
        for index, processor, seen in converters:
            value = values[index]
            if value is None:
                continue
            try:
                values[index] = seen[value]
            except KeyError:
                values[index] = seen[value] = processor(value)
            except TypeError:  # not hashable (a JSON document)
                values[index] = processor(value)
        return tuple(values)

    driver: Any = session.connection().connection.driver_connection
    names = ", ".join(f'"{name}"' for name in columns)
    if session.get_bind().dialect.name == "postgresql":
        with (
            driver.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                copy.write_row(converted(row))
        return
    marks = ", ".join("?" for _ in columns)
    cursor = driver.cursor()
    try:
        cursor.executemany(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', map(converted, rows)
        )
    finally:
        cursor.close()


def new_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` unused primary keys of `table`, to write rows with. On PostgreSQL they come from the
    column's sequence; on SQLite, whose writing transaction holds the database's one write lock,
    they are the ones after the largest (what SQLite itself would give)."""
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(
            session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
                ),
                {"table": table.name, "n": count},
            )
        )
    largest = session.scalar(text(f'SELECT coalesce(max(id), 0) FROM "{table.name}"')) or 0
    return list(range(largest + 1, largest + 1 + count))
