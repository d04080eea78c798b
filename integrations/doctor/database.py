"""The database: reachable, and at the schema revision this arbot needs (checked, not changed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.core import migrate
from bot.core.db import make_engine, normalise_url
from bot.core.errors import UserError
from integrations.doctor.findings import Finding, ok, problem

DATABASE = "Database"


def check_database(url: str) -> list[Finding]:
    try:
        parsed = make_url(normalise_url(url))
    except Exception:
        return [
            problem(
                DATABASE,
                "reachable",
                "DATABASE_URL is not a database URL (e.g. sqlite:///arbot.db or "
                "postgresql://user@host/dbname)",
            )
        ]
    shown = make_url(url).render_as_string(hide_password=True)  # as given, less its password
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        return [
            problem(
                DATABASE,
                "reachable",
                f"there is no database at {file} yet: run `arbot db upgrade` to create it (or "
                "check DATABASE_URL)",
            )
        ]
    try:
        engine = make_engine(url)
    except UserError as exc:
        return [problem(DATABASE, "reachable", str(exc))]
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        return [
            problem(
                DATABASE,
                "reachable",
                f"cannot open the database at {shown} ({str(reason).strip().splitlines()[0]}): "
                "check DATABASE_URL and that the server runs",
            )
        ]
    finally:
        engine.dispose()
    head = migrate.HEAD_REVISION
    if current is None:
        return [
            problem(
                DATABASE,
                "schema",
                f"the database at {shown} has no schema yet: run `arbot db upgrade`",
            )
        ]
    if current != head:
        if current.isdigit() and head.isdigit() and int(current) > int(head):
            return [
                problem(
                    DATABASE,
                    "schema",
                    f"the database is at revision {current}, newer than this arbot knows "
                    f"({head}): run the newer arbot",
                )
            ]
        return [
            problem(
                DATABASE,
                "schema",
                f"the database is at revision {current}, this arbot needs {head}: run `arbot db "
                "upgrade`",
            )
        ]
    return [ok(DATABASE, "schema", f"{shown} answers, at the head revision {head}")]
