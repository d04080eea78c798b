"""The databases a benchmark runs on: a SQLite file in a temporary folder, or a PostgreSQL schema of
its own (created empty, dropped afterwards) on the server ARBOT_BENCH_POSTGRES names (by default
127.0.0.1:5432, database `test`, trust auth). Also the plain driver connection the floors use."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings

SQLITE = "SQLite"
POSTGRESQL = "PostgreSQL"
KINDS = {"sqlite": SQLITE, "postgresql": POSTGRESQL}
PG_SERVER = os.environ.get(
    "ARBOT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 3, 16, 14, tzinfo=UTC)  # a Monday, 10:00 in New York


def postgres_absent() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"no PostgreSQL at {PG_SERVER.split('@')[-1]} ({type(exc).__name__})"
    return None


@contextmanager
def database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """An empty database of `kind` for one benchmark; its URL. Dropped afterwards."""
    if kind == SQLITE:
        path = folder / f"{name}.db"
        yield f"sqlite:///{path}"
        for leftover in folder.glob(f"{name}.db*"):
            leftover.unlink()
        return
    schema = f"arbot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_SERVER)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def open_runtime(url: str, **settings: Any) -> Runtime:
    """arbot's runtime on `url` (migrated), with the benchmarks' fixed clock."""
    loaded = load_settings(env_file=None, database_url=url, timezone="America/New_York", **settings)
    return start(loaded, clock=FixedClock(NOW))


def plain_connection(url: str) -> Any:
    """The plain driver's connection to `url` (sqlite3 or psycopg), without SQLAlchemy."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"))
    import psycopg

    server, _, options = url.partition("?options=")
    conninfo = server.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(conninfo, options=options.replace("%3D", "="))
