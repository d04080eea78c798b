"""Reading and writing many rows at once through the driver itself, in the session's own
transaction: COPY on PostgreSQL and one `executemany` on SQLite to write, a cursor read a chunk at
a time (server-side on PostgreSQL) to read. Each value is converted by its column's own type, as
SQLAlchemy would convert it; what is skipped is SQLAlchemy's work per row (a plan reads and
writes hundreds of thousands of rows, and on PostgreSQL a multi-row INSERT of that size is mostly
spent parsing its own parameters). Also `new_ids`: primary keys taken before the rows are
written, so that rows which point at each other can be written without reading ids back, and
`among`: a column's `IN (...)` over many values as one array parameter on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Date,
    DateTime,
    Select,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session

IN_CHUNK = 5000  # values of one IN (...) on SQLite: well inside its parameter limit


class Memo(dict[Any, Any]):
    """A conversion's results by the value converted: each distinct value converted once."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        converted = self[value] = self.convert(value)
        return converted


def _same(value: Any) -> Any:
    return value


def _converter(
    kinds: Sequence[Any],
    processors: Sequence[Any],
    hashable: Callable[[Any], bool],
    shared: Collection[int] = (),
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """One function converting a row (a sequence of values) with its columns' processors: a
    value of a `hashable` kind through a Memo (equal values then share one result), any other
    through its processor; None stays None. The columns whose indexes are in `shared` go through a
    Memo even without a processor, so that their few distinct values are held once. Written out
    as one expression, since it runs once for each of hundreds of thousands of rows."""
    names: dict[str, Any] = {}
    memos: dict[str, str] = {}  # columns of one type (a total and a balance) share their results
    parts = []
    for index, (kind, processor) in enumerate(zip(kinds, processors, strict=True)):
        if processor is None and index in shared and hashable(kind):
            processor = _same
        if processor is None:
            parts.append(f"row[{index}]")
            continue
        name = f"convert_{index}"
        if hashable(kind):
            name = memos.setdefault(f"{type(kind).__module__}.{kind!r}", name)
            names.setdefault(name, Memo(processor))
            parts.append(f"{name}[row[{index}]]")
        else:
            names[name] = processor
            parts.append(f"(None if row[{index}] is None else {name}(row[{index}]))")
    if not names:
        return tuple
    function: Callable[[Sequence[Any]], tuple[Any, ...]] = eval(
        f"lambda row: ({', '.join(parts)},)", names
    )
    return function


def _processors(session: Session, table: Table, columns: Sequence[str]) -> list[Any]:
    """Each column's bind processor. On PostgreSQL a date's, or a timezone-aware instant's, ends
    in the text psycopg would write for it (its isoformat): COPY writes text several times faster
    than it dumps those types, and a value repeated down a column is made text once."""
    dialect = session.get_bind().dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
    if dialect.name != "postgresql":
        return processors
    return [
        _as_text(processor) if _dated(table.c[name].type) else processor
        for name, processor in zip(columns, processors, strict=True)
    ]


def _dated(kind: Any) -> bool:
    """Whether a column holds a date or a timezone-aware instant."""
    kind = kind.impl if isinstance(kind, TypeDecorator) else kind
    return (isinstance(kind, DateTime) and bool(kind.timezone)) or type(kind) is Date


def _as_text(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if processor is None:
        return _isoformat
    return lambda value: _isoformat(processor(value))


def _isoformat(value: Any) -> Any:
    """A date's or an aware instant's isoformat; None as it is."""
    return None if value is None else value.isoformat()


def insert_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    as_is: Collection[str] = (),
) -> None:
    """INSERT `rows` (tuples of values in the order of `columns`) into `table`. The values of the
    columns named in `as_is` are handed to the driver as they are, already in its form (a JSON
    document's text)."""
    processors = _processors(session, table, columns)
    converted = _converter(
        [table.c[name].type for name in columns],
        [None if name in as_is else p for name, p in zip(columns, processors, strict=True)],
        hashable=lambda kind: not isinstance(kind, JSON),  # a JSON value is a dict or list
    )

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


def among(
    session: Session, column: QueryableAttribute[Any] | ColumnElement[Any], values: Sequence[Any]
) -> list[ColumnElement[bool]]:
    """Conditions that together say `column IN values`, each for a statement of its own: on
    PostgreSQL one `column = ANY(array)` (a single parameter however many values: an IN of
    thousands is mostly spent rendering and parsing its placeholders), on SQLite one IN (...)
    per IN_CHUNK values; none for no values."""
    if not values:
        return []
    if session.get_bind().dialect.name == "postgresql":
        expression = column.expression if isinstance(column, QueryableAttribute) else column
        array = bindparam(None, list(values), type_=ARRAY(expression.type))
        return [expression == any_(array)]
    return [column.in_(values[i : i + IN_CHUNK]) for i in range(0, len(values), IN_CHUNK)]


def read_rows(
    session: Session,
    query: Select[Any],
    chunk: int = 2000,
    shared: Collection[int] = (),
    keep: Callable[[Sequence[Any]], bool] | None = None,
    server_side: bool = True,
) -> Generator[tuple[Any, ...], None, None]:
    """The rows of `query`, streamed through the driver (a server-side cursor on PostgreSQL), each
    value converted by its column's type as SQLAlchemy would. Equal values are converted once and
    shared between rows: a caller that changes a value it got (a JSON list) copies it first. The
    columns whose indexes are in `shared` (a currency, a date) are held once per distinct value
    too, whatever their type. `keep`, when given, picks the rows wanted from the driver's own
    values, before any is converted (an id or a text is the same either way; a Decimal or a date
    may not be). `server_side=False` reads PostgreSQL's rows through an ordinary cursor: the
    whole result is held by the driver at once (a server-side cursor holds a chunk), but the
    server plans for every row, where a cursor's plan is made for the first tenth of them, and
    sends them without a round trip per chunk."""
    dialect = session.get_bind().dialect
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    driver: Any = session.connection().connection.driver_connection
    postgres = dialect.name == "postgresql"
    named = postgres and server_side
    cursor = driver.cursor(name=f"rows_{uuid.uuid4().hex}") if named else driver.cursor()
    try:
        if named:
            cursor.itersize = chunk
        cursor.execute(sql)
        columns = list(query.selected_columns)
        processors = [
            column.type._cached_result_processor(dialect, described[1])
            for column, described in zip(columns, cursor.description, strict=True)
        ]
        # What the driver hands back for JSON is text on SQLite, a dict or list on PostgreSQL.
        converted = _converter(
            [column.type for column in columns],
            processors,
            hashable=lambda kind: not (postgres and isinstance(kind, JSON)),
            shared=shared,
        )
        # A chunk at a time: a PostgreSQL server-side cursor iterated row by row costs a call
        # through psycopg for each row.
        while rows := cursor.fetchmany(chunk):
            yield from map(converted, rows if keep is None else filter(keep, rows))
    finally:
        cursor.close()
