"""The assembled application: settings, clock, database. Built once per process by the CLI or server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from bot.core import collector, migrate
from bot.core.clock import Clock, local_date
from bot.core.db import make_engine, session_factory, writing_factory
from bot.core.errors import UserError
from bot.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    parent: Runtime | None = None  # a workspace's runtime: the deployment's, closed with it

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions for reading (made at first use: a command that reads through the engine
        alone never loads the ORM)."""
        return session_factory(self.engine)

    @cached_property
    def writes(self) -> sessionmaker[Session]:
        """Sessions for a unit of work that writes."""
        return writing_factory(self.engine)

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One unit of work that writes: commits at the end of the block, rolls back on error."""
        with self.writes.begin() as session:
            yield session

    def today(self) -> date:
        """The business's date, in ARBOT_TIMEZONE."""
        return local_date(self.clock, self.settings.timezone)

    def close(self) -> None:
        self.engine.dispose()
        if self.parent is not None:
            self.parent.close()


def start(settings: Settings, clock: Clock | None = None, upgrade: bool = True) -> Runtime:
    """Connect and bring the schema up to date (the app upgrades itself on start)."""
    engine = make_engine(settings.database_url)
    if upgrade:
        try:
            with opening(settings.database_url):
                migrate.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
    runtime = Runtime(settings=settings, clock=clock or settings.clock(), engine=engine)
    collector.started()  # a command's start-up (see handlers/cli/main.py) ends here
    return runtime


@contextmanager
def opening(database_url: str) -> Iterator[None]:
    """Turn what keeps the database at `database_url` from being opened (no server there, a
    folder that does not exist, a file that is not a database) into the UserError saying so."""
    try:
        yield
    except DatabaseError as exc:
        # OperationalError: it cannot be reached or opened; DatabaseError itself: SQLite's "file
        # is not a database". Its other kinds (a constraint, a programming error) are no
        # problem of the setting, and go on as they are.
        if not isinstance(exc, OperationalError) and type(exc) is not DatabaseError:
            raise
        raise UserError(
            f"cannot open the database at DATABASE_URL ({_safe(database_url)}): {exc.orig}"
        ) from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
