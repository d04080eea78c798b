"""The rows a benchmark's run wrote, written again into arbot's tables with nothing but the
driver's bulk statement: shown beside a line, not a target, so that a reader sees how much of it is
the database's own work of storing these rows in this schema (its indexes, constraints and
foreign-key checks) and how much is arbot's.

The rows are read back from the database after a real run (every table, compared with what it held
before by primary key): those added, and of those changed only the columns that changed. They are
then written again into the same tables, holding what they held before the run, on PostgreSQL with
one COPY per table (its text format, as read back) and, for changed rows, one UPDATE from a COPY'd
temporary table; on SQLite with executemany. Each such run is timed to its last write and rolled
back (on PostgreSQL the tables are vacuumed afterwards, untimed). The same is done again with the
foreign keys not checked (SQLite's foreign_keys pragma off; PostgreSQL's session_replication_role
set to replica, which skips them and nothing else here: no table written has a trigger on insert
or update), so the difference is what the foreign-key checks alone cost."""

from __future__ import annotations

import ast
import dataclasses
import gc
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.databases import plain_connection
from benchmarks.results import Result
from bot.core.models import Base

# Parents before children, so that a foreign key checked row by row (SQLite) finds its row.
TABLES = tuple(
    (table.name, tuple(c.name for c in table.primary_key.columns))
    for table in Base.metadata.sorted_tables
)
ALONE = "same rows alone into arbot's tables"
UNCHECKED = "same rows, foreign keys unchecked"


@dataclass
class TableRows:
    """What a run wrote into one table: rows as read back (a COPY text line on PostgreSQL, a tuple
    on SQLite), added ones whole, changed ones as their key then their changed columns."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    added: list[Any] = field(default_factory=list)
    changed_columns: tuple[str, ...] = ()
    changed: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    postgresql: bool
    tables: tuple[TableRows, ...]

    def rows(self) -> int:
        return sum(len(t.added) + len(t.changed) for t in self.tables)

    def describe(self) -> str:
        added = ", ".join(f"{t.name} {len(t.added):,}" for t in self.tables if t.added)
        changed = ", ".join(
            f"{t.name} {len(t.changed):,} ({', '.join(t.changed_columns)})"
            for t in self.tables
            if t.changed
        )
        return f"rows added: {added or 'none'}; rows changed: {changed or 'none'}"


def _is_postgresql(connection: Any) -> bool:
    return not hasattr(connection, "create_function")  # sqlite3's connection has it


def _rows(
    connection: Any, table: str, key: tuple[str, ...]
) -> tuple[tuple[str, ...], Iterator[Any]]:
    """A table's column names and its rows in key order (COPY text lines on PostgreSQL)."""
    order = ", ".join(f'"{k}"' for k in key)
    select = f'SELECT * FROM "{table}" ORDER BY {order}'
    if _is_postgresql(connection):
        cursor = connection.execute(f'SELECT * FROM "{table}" LIMIT 0')
        columns = tuple(d.name for d in cursor.description)
        text = bytearray()
        with connection.cursor().copy(f"COPY ({select}) TO STDOUT") as copy:
            for data in copy:
                text += data
        lines = bytes(text).split(b"\n")[:-1]
        return columns, iter(lines)
    cursor = connection.execute(select)
    return tuple(d[0] for d in cursor.description), iter(cursor)


def _fields(row: Any, postgresql: bool) -> tuple[Any, ...]:
    return tuple(row.split(b"\t")) if postgresql else tuple(row)


def _tables(connection: Any) -> list[tuple[str, tuple[str, ...]]]:
    """arbot's tables that this database has (a model may be ahead of its migration)."""
    if _is_postgresql(connection):
        query = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    present = {row[0] for row in connection.execute(query)}
    return [(name, key) for name, key in TABLES if name in present]


def snapshot(connection: Any) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Every table's rows by primary key, as they are now (through `connection`, so inside its
    transaction when it has one)."""
    postgresql = _is_postgresql(connection)
    tables = {}
    for name, key in _tables(connection):
        columns, rows = _rows(connection, name, key)
        at = [columns.index(k) for k in key]
        by_key = {}
        for row in rows:
            fields = _fields(row, postgresql)
            # A SQLite row is kept as its repr: about half the memory of its tuple.
            by_key[tuple(fields[i] for i in at)] = row if postgresql else repr(row)
        tables[name] = by_key
    return tables


def written_since(connection: Any, before: dict[str, dict[tuple[Any, ...], Any]]) -> Written:
    """What was added and changed since `before` (a snapshot), read through `connection`. A run
    that removed rows is not one these figures are for."""
    postgresql = _is_postgresql(connection)
    found = []
    for name, key in _tables(connection):
        columns, rows = _rows(connection, name, key)
        at = [columns.index(k) for k in key]
        earlier = before[name]
        table = TableRows(name, columns, key)
        seen = 0
        changes: list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]] = []
        for row in rows:
            fields = _fields(row, postgresql)
            row_key = tuple(fields[i] for i in at)
            old = earlier.get(row_key)
            if old is None:
                table.added.append(row)
                continue
            seen += 1
            if old != (row if postgresql else repr(row)):
                was = _fields(old, postgresql) if postgresql else ast.literal_eval(old)
                changes.append((row_key, was, fields))
        if seen != len(earlier):
            raise RuntimeError(f"{len(earlier) - seen} rows of {name} removed by the run")
        if changes:
            moved = sorted(
                {
                    i
                    for _, old, new in changes
                    for i, (a, b) in enumerate(zip(old, new, strict=True))
                    if a != b
                }
            )
            table.changed_columns = tuple(columns[i] for i in moved)
            for row_key, _old, new in changes:
                values = row_key + tuple(new[i] for i in moved)
                table.changed.append(b"\t".join(values) if postgresql else values)
        if table.added or table.changed:
            found.append(table)
    return Written(postgresql, tuple(found))


def snapshot_of(url: str) -> dict[str, dict[tuple[Any, ...], Any]]:
    """A snapshot of the database at `url` as committed, through a connection of its own."""
    connection = plain_connection(url)
    try:
        return snapshot(connection)
    finally:
        connection.close()


def written_into(url: str, before: dict[str, dict[tuple[Any, ...], Any]]) -> Written:
    """What was committed at `url` since `before`, through a connection of its own."""
    connection = plain_connection(url)
    try:
        return written_since(connection, before)
    finally:
        connection.close()


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def write(connection: Any, written: Written) -> None:
    """Write `written` again through `connection`, in its transaction, parents first."""
    for table in written.tables:
        if written.postgresql:
            _copy(connection, table)
        else:
            _executemany(connection, table)


def _copy(connection: Any, table: TableRows) -> None:
    cursor = connection.cursor()
    if table.added:
        with cursor.copy(f'COPY "{table.name}" ({_names(table.columns)}) FROM STDIN') as copy:
            copy.write(b"\n".join(table.added) + b"\n")
    if table.changed:
        scratch = f"changed_{table.name}"
        cursor.execute(
            f'CREATE TEMP TABLE "{scratch}" ON COMMIT DROP AS SELECT '
            f'{_names(table.key + table.changed_columns)} FROM "{table.name}" WITH NO DATA'
        )
        with cursor.copy(f'COPY "{scratch}" FROM STDIN') as copy:
            copy.write(b"\n".join(table.changed) + b"\n")
        assignments = ", ".join(f'"{c}" = c."{c}"' for c in table.changed_columns)
        match = " AND ".join(f't."{k}" = c."{k}"' for k in table.key)
        cursor.execute(
            f'UPDATE "{table.name}" t SET {assignments} FROM "{scratch}" c WHERE {match}'
        )


def _executemany(connection: Any, table: TableRows) -> None:
    if table.added:
        marks = ", ".join("?" for _ in table.columns)
        connection.executemany(
            f'INSERT INTO "{table.name}" ({_names(table.columns)}) VALUES ({marks})', table.added
        )
    if table.changed:
        assignments = ", ".join(f'"{c}" = ?' for c in table.changed_columns)
        match = " AND ".join(f'"{k}" = ?' for k in table.key)
        connection.executemany(
            f'UPDATE "{table.name}" SET {assignments} WHERE {match}',
            [row[len(table.key) :] + row[: len(table.key)] for row in table.changed],
        )


def _open(url: str, foreign_keys: bool) -> Any:
    """A plain connection set as arbot sets its own (SQLite's pragmas), with or without
    foreign-key checks."""
    connection = plain_connection(url)
    if url.startswith("sqlite"):
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    elif not foreign_keys:
        connection.execute("SET session_replication_role = replica")
    return connection


def _vacuum(url: str, written: Written) -> None:
    """Clear the rolled-back rows' dead entries, so each run writes as the first did."""
    if not written.postgresql:
        return
    connection = plain_connection(url)
    try:
        connection.autocommit = True
        connection.execute(f"VACUUM {_names(tuple(t.name for t in written.tables))}")
    finally:
        connection.close()


def timed_write(url: str, written: Written, foreign_keys: bool) -> float:
    """The time to write `written` again (to its last write); rolled back afterwards."""
    connection = _open(url, foreign_keys)
    try:
        gc.collect()
        started = time.perf_counter()
        write(connection, written)
        seconds = time.perf_counter() - started
        connection.rollback()
    finally:
        connection.close()
    _vacuum(url, written)
    return seconds


def can_skip_foreign_keys(url: str) -> bool:
    """PostgreSQL lets only a superuser set session_replication_role."""
    if url.startswith("sqlite"):
        return True
    connection = plain_connection(url)
    try:
        return bool(connection.execute("SHOW is_superuser").fetchone()[0] == "on")
    finally:
        connection.close()


def figures(line: Result, url: str, written: Written, runs: int) -> list[Result]:
    """Two lines shown under `line`, not targets: its rows written again into arbot's tables,
    with and without foreign-key checks, medians of `runs` alternating runs, each beside the
    line's floor."""
    unchecked_allowed = can_skip_foreign_keys(url)
    checked, unchecked = [], []
    for _ in range(runs):
        if unchecked_allowed:
            unchecked.append(timed_write(url, written, foreign_keys=False))
        checked.append(timed_write(url, written, foreign_keys=True))
    changes = any(table.changed for table in written.tables)
    how = (
        "one COPY a table"
        + (", changed rows by one UPDATE from a COPY'd temporary table" if changes else "")
        if written.postgresql
        else "one executemany a table"
    )
    note = (
        f"not a target: {written.rows():,} rows as the run wrote them ({written.describe()}), "
        f"written again by {how}, no application logic; timed to the last write, then rolled back."
    )

    def shown(name: str, timings: list[float], note: str = "") -> Result:
        return dataclasses.replace(
            line,
            name=f"{line.name}: {name}",
            value=statistics.median(timings),
            ratio_target=None,
            target=None,
            note=note,
            shown_only=True,
        )

    results = [shown(ALONE, checked, note)]
    if unchecked:
        results.append(shown(UNCHECKED, unchecked))
    return results
