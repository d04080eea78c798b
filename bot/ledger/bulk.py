"""Bulk statements for a ledger import or a bank feed: many rows in one statement each.

`insert_rows` writes a list of rows straight through the driver: PostgreSQL's COPY, or one
executemany of a plain INSERT on SQLite. Each value goes through its column's type first (exact
money, UTC instants, JSON), exactly as an ORM insert would store it, and a column the rows leave
out takes its default. `bulk_update` updates rows by primary key, and `chunks` cuts rows or the
values of an IN (...) into parts well inside the drivers' parameter limits.
`cycles_collected_after` holds off the cycle collector while a whole book is worked on.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from itertools import repeat
from operator import eq, itemgetter
from typing import Any, TypeVar

from sqlalchemy import JSON, Date, DateTime, Dialect, Numeric, Table, TypeDecorator, update
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

from bot.core.bulk_rows import Memo

CHUNK = 5000  # rows per bulk UPDATE or values per IN (...): well inside the drivers' limits
T = TypeVar("T")


@contextmanager
def cycles_collected_after() -> Iterator[None]:
    """Hold off Python's cycle collector during work on a whole book: its rows and records form
    no cycles, and with 100,000 of them alive every collection walks them all again (a third of
    the work of matching a bank file or of upserting a book)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def core_table(model: type[Any]) -> Table:
    """The Core table of a model."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def chunks(values: Sequence[T]) -> list[Sequence[T]]:
    """`values` in parts of at most CHUNK, for statements with one parameter (or row) each."""
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def bulk_update(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows):
        session.execute(update(model), chunk)


def insert_rows(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts of the table's columns, every one with the same keys) into the
    model's table in the session's transaction, in one COPY on PostgreSQL or one executemany on
    SQLite. Ids are not returned: read them back by a unique key when they are needed."""
    if rows:
        insert_columns(
            session, model, {name: list(map(itemgetter(name), rows)) for name in rows[0]}
        )


def insert_columns(session: Session, model: type[Any], given_columns: dict[str, list[Any]]) -> None:
    """`insert_rows` for rows given column by column: each of the table's columns given with its
    cells, all of the same length (the rows' number)."""
    count = len(next(iter(given_columns.values()), []))
    if count == 0:
        return
    table = core_table(model)
    dialect = session.get_bind().dialect
    given = list(given_columns)
    defaults = _defaults(table, given)
    names = given + [name for name, _ in defaults]
    # Column by column: each column's type converts its values in one pass, then the rows are
    # zipped back together.
    columns: list[Iterable[Any]] = []
    # per kind of column converted so far: its cells and what they were converted to
    converted_of: dict[str, tuple[list[Any], list[Any]]] = {}
    for name in given:
        convert = _converter(table, name, dialect)
        cells = given_columns[name]
        if convert is None:
            columns.append(cells)
            continue
        kind = f"{type(table.c[name].type).__module__}.{table.c[name].type!r}"
        twin = converted_of.get(kind)
        if twin is not None and _mostly_equal(cells, twin[0]):
            # a balance beside its total: a cell equal to the twin's is converted alike (the
            # same object, as a reader that parsed it once hands it, without comparing)
            converted = [
                done if cell is other or cell == other else convert(cell)
                for cell, other, done in zip(cells, *twin, strict=True)
            ]
        else:
            converted = list(_converted(convert, cells))
            converted_of.setdefault(kind, (cells, converted))
        columns.append(converted)
    for name, value in defaults:
        convert = _converter(table, name, dialect)
        columns.append(repeat(value if convert is None else convert(value), count))
    write_converted(session, table, names, list(zip(*columns, strict=True)))


def converter_of(session: Session, model: type[Any], name: str) -> Callable[[Any], Any]:
    """What the column `name` of the model's table makes of a value before the driver sees it
    (as `insert_columns` converts it), for rows handed to `write_converted`."""
    return _converter(core_table(model), name, session.get_bind().dialect) or _same


def _same(value: Any) -> Any:
    return value


def write_converted(
    session: Session, table: Table, names: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """Write rows whose values are converted already (`converter_of`), in the order of `names`,
    in one COPY on PostgreSQL or one executemany on SQLite."""
    if not values:
        return
    dialect = session.get_bind().dialect
    connection = session.connection()
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        with copy_into(session, table, names) as write:
            for row in values:
                write(row)
        return
    marks = ", ".join("?" for _ in names)
    connection.exec_driver_sql(f"INSERT INTO {target} ({quoted}) VALUES ({marks})", values)


@contextmanager
def copy_into(
    session: Session, table: Table, names: Sequence[str]
) -> Iterator[Callable[[Sequence[Any]], None]]:
    """PostgreSQL: one COPY into `table`, open while the block runs; the function it gives
    hands the server a row (converted already, in the order of `names`), which the server
    writes as it arrives while the caller goes on. The COPY ends with the block, once the server
    has written every row; a block that raises writes nothing."""
    dialect = session.get_bind().dialect
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({quoted}) FROM STDIN"
    driver = session.connection().connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            yield copy.write_row
    except dialect.loaded_dbapi.Error as exc:
        raise _without_values(exc, statement, dialect) from None


def _converted(convert: Callable[[Any], Any], cells: list[Any]) -> Iterable[Any]:
    """The cells converted; when the column repeats its values (the instant of an import on
    every row, a date), each distinct value once."""
    head = cells[:1000]  # enough rows to see a date or an instant come back
    try:
        mostly_distinct = len(set(head)) * 2 > len(head)
    except TypeError:  # JSON: dicts and lists
        return _converted_json(convert, cells)
    if mostly_distinct:
        return map(convert, cells)
    return list(map(Memo(convert).__getitem__, cells))


def _mostly_equal(cells: list[Any], others: list[Any]) -> bool:
    """Whether most of the first thousand cells equal the other column's on the same rows."""
    head = cells[:1000]
    matching: int = sum(map(eq, head, others))
    return matching * 2 > len(head)


def _converted_json(convert: Callable[[Any], Any], cells: list[Any]) -> list[Any]:
    """JSON cells converted, those written alike (a customer's tags, an event's payload) once:
    the repr of a dict or list of plain values names its types, values and order, all that its
    JSON text is made of."""
    done: dict[str, Any] = {}
    out = []
    last: Any = _UNSEEN
    converted: Any = None
    for cell in cells:
        if cell is last:  # the same object as the row before's (one payload for many rows)
            out.append(converted)
            continue
        key = repr(cell)
        converted = done.get(key, _UNSEEN)
        if converted is _UNSEEN:
            converted = done[key] = convert(cell)
        out.append(converted)
        last = cell
    return out


_UNSEEN: Any = object()


def _without_values(error: Exception, statement: str, dialect: Dialect) -> StatementError:
    """A failed COPY's error as SQLAlchemy raises any other, naming no value: of what the server
    said only its first line is kept (its DETAIL and CONTEXT quote the row), as the engine does
    for every statement it runs itself (bot/core/db.py)."""
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    error.args = (
        f"{primary or type(error).__name__}\nDETAIL:  hidden (it may hold the row's values)",
    )
    return DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        dialect=dialect,
    )


def _defaults(table: Table, given: list[str]) -> list[tuple[str, Any]]:
    """The columns the rows leave out that have a default of their own, with its value."""
    out = []
    for column in table.columns:
        if column.name in given or column.default is None:
            continue
        default: Any = column.default
        if default.is_scalar:
            out.append((column.name, default.arg))
        elif default.is_callable:
            out.append((column.name, default.arg(None)))
    return out


def _converter(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What the column's type makes of a value before the driver sees it (None: nothing). A JSON
    value for PostgreSQL's COPY is made its text here, as psycopg would at each row, so that
    values written alike are written once; so is a date, an instant or an exact number (the
    text psycopg would write for it; a date or an instant repeated down a column is then made
    text once, and COPY is handed text, which psycopg writes several times faster)."""
    kind = table.c[name].type
    processor: Callable[[Any], Any] | None = kind._cached_bind_processor(dialect)
    if dialect.name != "postgresql":
        return processor
    if processor is not None and isinstance(kind, JSON):
        wrap = processor
        return lambda value: _json_text(wrap(value))
    if isinstance(
        kind.impl if isinstance(kind, TypeDecorator) else kind, Date | DateTime | Numeric
    ):
        if processor is None:
            return _copy_text
        then = processor
        return lambda value: _copy_text(then(value))
    return processor


def _copy_text(value: Any) -> Any:
    """The text psycopg writes into a COPY for a date, an instant or a Decimal (its isoformat,
    or its str); None, and a value of any other kind, as it is."""
    if isinstance(value, Decimal):
        return str(value)
    if value is None or not hasattr(value, "isoformat"):
        return value
    return value.isoformat()


def _json_text(value: Any) -> Any:
    """The text psycopg writes for a JSON value it was handed wrapped (its own dumps, else the
    standard json module's, psycopg's default); anything else as it is."""
    from psycopg.types.json import Json

    if isinstance(value, Json):
        return (value.dumps or json.dumps)(value.obj)
    return value
