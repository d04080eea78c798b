"""One migrated SQLite file per test process: each test's database, and each workspace a test
installs, starts as a copy of it rather than running every migration again (about 0.1 s of CPU
and 0.3 s of fsyncs each). Installing from a new file, migrations and all, is still tested:
`complete_install` called directly, and on PostgreSQL each install through the install pages
and the first of each workspace in a test process (tests/support/kept_schemas.py)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from bot.core import migrate
from bot.core.db import make_engine


@cache
def migrated_sqlite() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="arbot-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "arbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


def copy_migrated(path: Path) -> None:
    """A migrated, empty database at `path`."""
    shutil.copy(migrated_sqlite(), path)
