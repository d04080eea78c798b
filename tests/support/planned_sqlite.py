"""SQLite databases as a fixture's setup leaves them, kept for the test process by what made them
(the same rows imported and the same plan made, on the same day with the same rules), so that the
next test with the same setup starts from a copy instead of importing and planning again (about
45 ms of CPU a test). The setup is deterministic: two runs of it store the same rows, byte for
byte. Only a database still the migrated, empty one (tests/support/migrated_sqlite.py) is
replaced by a copy or kept; PostgreSQL always runs the setup."""

from __future__ import annotations

import atexit
import filecmp
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url

from tests.support.migrated_sqlite import migrated_sqlite

_KEPT: dict[str, Path] = {}
Opened = TypeVar("Opened")


@cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="arbot-planned-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def fresh_sqlite(url: str) -> Path | None:
    """The file of the SQLite database at `url` when it is still a copy of the migrated, empty
    one that nothing has opened; None otherwise (PostgreSQL too)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    if Path(f"{path}-wal").exists() or not path.is_file():
        return None
    return path if filecmp.cmp(path, migrated_sqlite(), shallow=False) else None


def restore(path: Path, setup: str) -> bool:
    """Replace the fresh database at `path` with the one kept for `setup`, if there is one."""
    kept = _KEPT.get(setup)
    if kept is None:
        return False
    shutil.copy(kept, path)
    return True


def keep(path: Path, setup: str) -> None:
    """Keep a copy of the database at `path`, which `setup` made from a fresh one."""
    target = _folder() / f"{len(_KEPT)}.db"
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)  # with what its write-ahead log holds
    finally:
        copy.close()
        source.close()
    _KEPT[setup] = target


def set_up_once(
    url: str, setup: str, open_database: Callable[[], Opened], make: Callable[[Opened], None]
) -> Opened:
    """The database at `url` opened, with what `make` writes into it: on SQLite, when nothing has
    opened the database yet and an earlier test made the same `setup` (a key naming the fixture
    and everything the rows depend on), a copy of that one instead of `make`'s work."""
    fresh = fresh_sqlite(url)
    restored = fresh is not None and restore(fresh, setup)
    opened = open_database()
    if not restored:
        make(opened)
        if fresh is not None:
            keep(fresh, setup)
    return opened
