"""Schema migrations with Alembic. The app upgrades itself on start; `arbot db upgrade` does it by hand."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.core.db import WRITING
from bot.core.errors import UserError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x6172626F74_00  # "arbot" + 0
# The newest script's revision. Every command starts by checking the schema against it, so it is
# written here rather than read from the scripts through Alembic (a tenth of a second at every
# start); a test checks it is the scripts' head, so a new migration cannot be forgotten here.
HEAD_REVISION = "0023"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head_revision() -> str | None:
    """The newest revision among the scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def known_revisions() -> frozenset[str]:
    """Every revision among the scripts."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _up_to_date(engine: Engine) -> bool:
    """True when the database already stands at HEAD_REVISION (one plain query, no Alembic)."""
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return False  # no version table yet: a new database
    return [row[0] for row in stored] == [HEAD_REVISION]


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest revision. Returns True when something was applied."""
    if _up_to_date(engine):
        return False
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    current = current_revision(engine)
    if current == head_revision():
        return False
    if current is not None and current not in known_revisions():
        raise UserError(
            f"the database's schema is at revision {current}, which this arbot does not know "
            f"(its newest is {head_revision()}): a newer arbot has most likely upgraded it; "
            "run that version, or restore a backup of the database taken before"
        )
    config = alembic_config()
    with engine.execution_options(**{WRITING: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait here and then find
            # nothing left to do.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            if MigrationContext.configure(connection).get_current_revision() == head_revision():
                return False
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return True
