"""What every command does before its own work: bring the schema to the newest revision. A
database already there is recognised by one plain query, without loading Alembic; one behind is
still upgraded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.core import migrate
from bot.core.db import make_engine
from tests.conftest import NOW

# What `arbot aging` has no use for on a database already at the newest revision: Alembic, the
# mapped model and the ORM (the report reads a plain table through the engine), and the
# integrations (`--as-of` is held to the ledger's dates by bot.core.ledger_dates).
NOT_FOR_AGING = (
    "alembic",
    "bot.core.models",
    "sqlalchemy.orm",
    "integrations",
    "slack_sdk",
    "jinja2",
    "httpx",
)

_RUN_AS_ARBOT = """
import gc, json, sys
sys.argv = ["arbot", *sys.argv[1:]]
from handlers.cli.main import main
collections = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collections.append(info))
try:
    main()
finally:
    loaded = sorted(sys.modules)
    sys.stderr.write("\\nCOLLECTIONS " + str(len(collections)) + "\\n")
    sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
"""


def _arbot(database: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`arbot ARGS` in a fresh interpreter, and the modules it had loaded at the end."""
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{database}",
        "ARBOT_NOW": NOW.isoformat(),
        "ARBOT_TIMEZONE": "America/New_York",
    }
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AS_ARBOT, *args],
        cwd=database.parent,  # no stray .env from the working tree
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = result.stderr.rindex("LOADED ")
    loaded = set(json.loads(result.stderr[marker + len("LOADED ") :]))
    return result, loaded


def _collections(result: subprocess.CompletedProcess[str]) -> int:
    """How many times the garbage collector ran while the command ran (its modules loaded)."""
    marker = result.stderr.rindex("COLLECTIONS ")
    return int(result.stderr[marker + len("COLLECTIONS ") :].split()[0])


def _within(loaded: set[str], packages: tuple[str, ...]) -> set[str]:
    """The loaded modules that are one of `packages` or inside one."""
    return {name for name in loaded for p in packages if name == p or name.startswith(p + ".")}


def _revision(database: Path) -> str | None:
    engine = make_engine(f"sqlite:///{database}")
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def _one_revision_behind(database: Path, sqlite_template: Path) -> None:
    from alembic import command

    shutil.copy(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    engine.dispose()
    assert _revision(database) not in (None, migrate.HEAD_REVISION)


def test_aging_at_the_newest_revision_prints_the_report_without_loading_alembic(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "arbot.db"
    shutil.copy(sqlite_template, database)
    result, loaded = _arbot(database, "aging", "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report == {"as_of": "2026-03-16", "currencies": {}, "dso": {}, "dso_period_days": 90}
    assert _within(loaded, NOT_FOR_AGING) == set()


def test_aging_on_a_database_one_revision_behind_upgrades_it_first(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "arbot.db"
    _one_revision_behind(database, sqlite_template)
    result, loaded = _arbot(database, "aging", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["currencies"] == {}
    assert _within(loaded, ("alembic",))
    assert _revision(database) == migrate.HEAD_REVISION


def test_the_quick_check_upgrades_a_database_behind_and_passes_one_at_the_newest(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "arbot.db"
    _one_revision_behind(database, sqlite_template)
    engine = make_engine(f"sqlite:///{database}")
    try:
        assert migrate.upgrade(engine) is True
        assert migrate.current_revision(engine) == migrate.HEAD_REVISION
        assert migrate.upgrade(engine) is False
    finally:
        engine.dispose()


def test_aging_loads_what_it_runs_on_without_the_collector_walking_it(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Until the runtime is open, what the command loads lives as long as the process: the
    collector runs after it is set aside, not every 700 objects while it loads (about 120
    collections before, a fifteenth of the command's CPU)."""
    database = tmp_path / "arbot.db"
    shutil.copy(sqlite_template, database)
    result, _loaded = _arbot(database, "aging")
    assert result.returncode == 0, result.stderr
    assert "Receivables aging as of 2026-03-16" in result.stdout
    assert _collections(result) < 10
