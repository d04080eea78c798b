"""Workspaces' PostgreSQL schemas kept between tests, the way each SQLite workspace file starts as
a copy of a migrated one (tests/support/migrated_sqlite.py). Making and migrating a new schema
costs the server 0.3 to 0.8 s, and dropping it up to 0.3 s more. So after a test, a workspace's
schema still exactly as the migrations leave it is emptied (every row deleted, every id sequence
started again) and kept under a spare name; the next `install` of that workspace
(tests/support/workspace_setup.py) renames the spare back, and the install finds it migrated
and empty. A schema that a test changed in any way (a table, column, index, constraint,
trigger, function or the migrations' revision unlike the main test schema's) is dropped.

Installs that do not go through `install` (the install pages, `Workspaces.prepare`) and the
first install of each workspace in a test process still make and migrate a new schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bot.workspaces.registry import database_schema, workspace_database_url

_SPARE = "spare_"  # `<schema>_spare_<team>`: no team id has an underscore, so none is named so

# What the migrations make in a schema, each line naming no schema (see _shape).
_SHAPE = """
SELECT 'relation ' || c.relkind::text || ' ' || c.relname
FROM pg_class c WHERE c.relnamespace = :ns
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
    || ' ' || a.attnotnull::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = :ns AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = :ns
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = :ns
UNION ALL
SELECT 'trigger ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = :ns AND NOT t.tgisinternal
UNION ALL
SELECT 'function ' || p.proname || ' ' || p.prosrc FROM pg_proc p WHERE p.pronamespace = :ns
"""


def spare_of(schema: str, base: str) -> str:
    return f"{base}_{_SPARE}{schema.removeprefix(base + '_')}"


def _shape(connection: Any, schema: str) -> list[str]:
    namespace = connection.execute(
        text("SELECT oid FROM pg_namespace WHERE nspname = :name"), {"name": schema}
    ).scalar()
    lines = connection.execute(text(_SHAPE), {"ns": namespace}).scalars()
    shape = []
    versions = f'"{schema}".alembic_version'
    if connection.execute(text("SELECT to_regclass(:name)"), {"name": versions}).scalar():
        revisions = connection.execute(text(f"SELECT version_num FROM {versions}")).scalars()
        shape += [f"revision {revision}" for revision in revisions]
    for line in lines:
        shape.append(line.replace(f'"{schema}".', "").replace(f"{schema}.", ""))
    return sorted(shape)


def keep_workspace_schemas(connection: Any, url: str, empty_tables: Callable[[Any], None]) -> None:
    """After a test: each workspace schema of the main one at `url` (bot.workspaces.registry
    names them `<schema>_<team>`) emptied and kept as a spare when it is as the migrations left
    it and no spare of that workspace is kept yet, else dropped. `empty_tables` empties the
    schema the connection's search_path names (tests/conftest.py)."""
    base = database_schema(url)
    assert base is not None
    found = connection.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern ORDER BY nspname"),
        {"pattern": f"{base}\\_%"},
    ).scalars()
    schemas = list(found)
    main_shape: list[str] | None = None
    for schema in schemas:
        if schema.startswith(f"{base}_{_SPARE}"):
            continue
        if spare_of(schema, base) not in schemas:
            if main_shape is None:
                main_shape = _shape(connection, base)
            if _shape(connection, schema) == main_shape:
                connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
                empty_tables(connection)
                connection.execute(text(f'SET LOCAL search_path TO "{base}"'))
                spare = spare_of(schema, base)
                connection.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{spare}"'))
                schemas.append(spare)
                continue
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def take_spare(main: Any, team: str) -> None:
    """Before installing `team` on PostgreSQL: its kept spare schema, if there is one and the
    workspace has no schema yet, becomes its schema."""
    url = main.settings.database_url
    base = database_schema(url)
    schema = database_schema(workspace_database_url(url, team))
    if base is None or schema is None:
        return
    spare = spare_of(schema, base)
    with main.engine.begin() as connection:
        present = set(
            connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname IN (:schema, :spare)"),
                {"schema": schema, "spare": spare},
            ).scalars()
        )
        if spare in present and schema not in present:
            connection.execute(text(f'ALTER SCHEMA "{spare}" RENAME TO "{schema}"'))
