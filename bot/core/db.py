"""Engines and sessions. SQLite is the embedded default; PostgreSQL comes in through DATABASE_URL.

Every engine hides a statement's parameters from its errors, and PostgreSQL's engines the detail
the server adds to an error ("Failing row contains (…)", "Key (email)=(…) already exists"): both
hold customers' names, addresses and whole messages, and a failing statement's error is logged."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.util import LRUCache

from bot.core.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000
WRITING = "arbot_writing"  # execution option: this transaction will write


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(normalise_url(url))
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UserError(
            f"DATABASE_URL {_without_password(url)!r} is not a database URL "
            "(e.g. sqlite:///arbot.db or postgresql://user@host/dbname)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.render_as_string(hide_password=False), **kwargs)
    if parsed.get_backend_name() != "postgresql":
        raise UserError(
            f"DATABASE_URL: {parsed.get_backend_name()} is not supported; use SQLite or PostgreSQL"
        )
    engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True, **kwargs)
    event.listen(engine, "handle_error", _hide_server_detail)
    return engine


_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _without_password(url: str) -> str:
    """A URL that did not parse, for a message: `user:password@` read as the usual form."""
    return _PASSWORD.sub(r"\1***@", url, count=1)


def _hide_server_detail(context: ExceptionContext) -> None:
    """Drop the DETAIL PostgreSQL adds to an error (the failing row, the duplicate key's value):
    the error keeps its first line, its SQL and its type, which is what a reader needs."""
    error = context.original_exception
    detail = getattr(getattr(error, "diag", None), "message_detail", None)
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    if not detail or not primary:
        return
    error.args = (f"{primary}\nDETAIL:  hidden (it may hold the row's values)",)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(error).__module__}.{type(error).__name__}) {error.args[0]}",)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    # The driver's own transaction handling is switched off so we say how each transaction
    # begins: a writing one (see `writing_engine`) with BEGIN IMMEDIATE, so it takes the write
    # lock up front and a contending writer waits (busy_timeout) instead of failing half-way;
    # a reading one with a plain BEGIN, which in WAL mode never blocks a writer.
    engine = create_engine(
        url, connect_args={"isolation_level": None}, hide_parameters=True, **kwargs
    )
    if not kwargs:  # made as every other: its statements compile as theirs do
        engine.update_execution_options(compiled_cache=SQLITE_STATEMENTS)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITING, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class _SameDialects(LRUCache[Any, Any]):
    """Compiled statements, shared by every SQLite engine of the process made the same way.

    SQLAlchemy keeps each engine's compiled statements apart, keyed by the engine's own dialect
    object, so a process that opens several databases (each installed workspace's, each command
    run in-process, each test's) compiled every statement again for each: a seventh of the CPU
    of the tests that run commands and plan. Engines made alike, with the same SQLite
    library, compile a statement to the same SQL with the same type handling, so here a key
    names its dialect by kind and library version instead."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(_by_kind(key), default)

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(_by_kind(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(_by_kind(key), value)


def _by_kind(key: Any) -> Any:
    """SQLAlchemy's key, (dialect, statement's key, ...), with the dialect named by its class
    and the SQLite version it found on connecting."""
    dialect = key[0] if isinstance(key, tuple) and key else None
    if not isinstance(dialect, Dialect):  # another shape (another SQLAlchemy): the key as it is
        return key
    return ((type(dialect), dialect.server_version_info), *key[1:])


# Room for every statement arbot runs (about 500 in the tests of the commands, the planner and
# the sender alone): four times an engine's own cache (SQLAlchemy's query_cache_size, 500).
SQLITE_STATEMENTS = _SameDialects(2000)


# The ORM is loaded when the first session is made, not with the engine: a command that reads
# through the engine alone (aging) starts without it.


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def writing_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for a unit of work that writes (BEGIN IMMEDIATE on SQLite)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine.execution_options(**{WRITING: True}), expire_on_commit=False)
