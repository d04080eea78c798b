"""Fixtures for the real things: a migrated database (SQLite always, PostgreSQL when it answers),
a clock that tests move, and the `arbot` command line run in-process."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.core import migrate
from bot.core.clock import FixedClock
from bot.core.db import make_engine
from bot.core.models import Base
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings

PG_SERVER = os.environ.get(
    "ARBOT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # a Monday, 10:00 in New York (daylight time)


def _postgres_answers() -> bool:
    try:
        engine = create_engine(PG_SERVER, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_answers()

# Hypothesis fails an example that takes longer than its deadline (200 ms by default), and a run
# whose data is slow to generate: a loaded machine is not a bug. No test here is about speed
# (benchmarks/ is), so neither applies.
hypothesis_settings.register_profile(
    "arbot", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("arbot")


@pytest.hookimpl(trylast=True)  # after hypothesis's own: it refuses disk access before then
def pytest_sessionstart(session: pytest.Session) -> None:
    """Hypothesis's UTF-8 table in place before any `st.text()`: on a fresh checkout, working it
    out took the first text test of each worker about 4.5 s of CPU."""
    from tests.support.hypothesis_tables import lay_down_quietly

    lay_down_quietly()
    if session.config.pluginmanager.has_plugin("dsession"):  # the process that starts the workers
        _compile_the_bundled_templates()
    else:  # a process that runs tests
        from tests.support.kept_check import install

        install()


def pytest_configure(config: pytest.Config) -> None:
    """The compiled templates kept for the whole run (playbooks/render.py's ARBOT_TEMPLATE_CODE),
    in a folder of this run's own: otherwise each worker compiled the bundled playbook's 171
    templates itself, about a second of CPU, as does each `arbot` process a test starts."""
    from playbooks.render import CODE_FOLDER

    if hasattr(config, "workerinput"):
        return  # a worker takes the folders from the process that started it
    _temporary_files_in_memory(config)
    if CODE_FOLDER in os.environ:
        return
    os.environ[CODE_FOLDER] = tempfile.mkdtemp(prefix="arbot-template-code-")
    config.add_cleanup(_forget_the_compiled_templates)


# A memory-backed folder is taken for the run's temporary files only with this much room: Docker
# gives a container a /dev/shm of 64 MB, which a run would fill.
MEMORY_FOLDER = Path("/dev/shm")
MEMORY_FOLDER_ROOM = 1 << 30


def _temporary_files_in_memory(config: pytest.Config) -> None:
    """The run's temporary files (each test's tmp_path and its SQLite databases, the migrated
    and planned copies) in a memory-backed folder where there is one with room, for this process,
    the workers it starts and the commands they run. SQLite syncs a database file to disk each
    time its write-ahead log is checkpointed, as the last connection to it closes: on a disk, a
    test's database copied, opened, written and closed took 3.8 ms (2.8 ms of CPU), in memory
    2.0 ms, and each command a test runs opens and closes it again. A TMPDIR, a --basetemp or
    pytest's PYTEST_DEBUG_TEMPROOT set by whoever runs the tests still decides."""
    if config.option.basetemp or {"TMPDIR", "PYTEST_DEBUG_TEMPROOT"} & set(os.environ):
        return
    try:
        usable = (
            MEMORY_FOLDER.is_dir()
            and os.access(MEMORY_FOLDER, os.W_OK | os.X_OK)
            and shutil.disk_usage(MEMORY_FOLDER).free >= MEMORY_FOLDER_ROOM
        )
    except OSError:
        usable = False
    if usable:
        os.environ["TMPDIR"] = str(MEMORY_FOLDER)
        tempfile.tempdir = None  # worked out again, from TMPDIR


def _forget_the_compiled_templates() -> None:
    from playbooks.render import CODE_FOLDER

    shutil.rmtree(os.environ.pop(CODE_FOLDER), ignore_errors=True)


def _compile_the_bundled_templates() -> None:
    """Once, while the workers start and collect, rather than once in each of them."""
    from playbooks.loader import load_bundle
    from playbooks.render import Renderer

    Renderer(load_bundle().templates).compile_all()


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """A migrated SQLite file; each test gets a copy (migrating once keeps the suite fast)."""
    from tests.support.migrated_sqlite import migrated_sqlite

    return migrated_sqlite()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own in the `test` database, migrated once, dropped at the end."""
    if not POSTGRES:
        pytest.skip(f"PostgreSQL does not answer at {PG_SERVER}")
    schema = f"arbot_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            drop_workspace_schemas(connection, url)
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker more than the cores. Many tests spend their time waiting on a
    server, a subprocess or the database, so a core would otherwise sit idle. The environment's
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return (os.cpu_count() or 1) + 1


@pytest.fixture(scope="session")
def postgres_emptying(postgres_schema: str) -> Iterator[Engine]:
    """The engine that empties the test schema after each test: one connection for the session,
    where an engine made at each test connected anew (a new server process, about 30 ms)."""
    engine = make_engine(postgres_schema)
    yield engine
    engine.dispose()


EMPTYING_ATTEMPTS = 5  # PostgreSQL gives up a deadlocked DELETE: the work it met ends soon


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: the same tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "arbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_schema")
    engine = request.getfixturevalue("postgres_emptying")
    yield url
    from tests.support.kept_schemas import keep_workspace_schemas

    for attempt in range(EMPTYING_ATTEMPTS):
        try:
            with engine.begin() as connection:
                empty_tables(connection)
                keep_workspace_schemas(connection, url, empty_tables)
            break
        except OperationalError:  # a click's work after the test, still redrawing: a deadlock
            if attempt == EMPTYING_ATTEMPTS - 1:
                raise


def empty_tables(connection: Any) -> None:
    """Every table emptied and every id sequence started again, as a fresh schema has them.

    DELETE, children first, rather than TRUNCATE: a TRUNCATE gives each table and index a new file
    (70 ms for the whole schema, empty or not), where deleting a test's few rows takes a few."""
    # A TRUNCATE waited for work still writing after the test (a click's redraw) and removed its
    # rows; a DELETE does not see rows not yet committed. The lock makes the DELETEs wait too.
    every = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    connection.exec_driver_sql(f"LOCK TABLE {every} IN ACCESS EXCLUSIVE MODE")
    if connection.exec_driver_sql("SHOW is_superuser").scalar() == "on":
        # the triggers stay off for this transaction: events' append-only one refuses DELETE
        statements = ["SET LOCAL session_replication_role = replica"]
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    else:
        statements = ["TRUNCATE events CASCADE"]  # TRUNCATE does not meet that trigger
        tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "events"]
    statements += [f'DELETE FROM "{name}"' for name in tables]
    sequences = connection.execute(
        text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
    ).scalars()
    statements += [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
    connection.exec_driver_sql("; ".join(statements))


def drop_workspace_schemas(connection: Any, url: str) -> None:
    """Installed workspaces' schemas (bot.workspaces.registry names them `<schema>_<team>`)."""
    from bot.workspaces.registry import database_schema

    base = database_schema(url)
    found = connection.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern"),
        {"pattern": f"{base}\\_%"},
    ).scalars()
    for schema in list(found):
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(env_file=None, database_url=database_url, timezone="America/New_York")


@pytest.fixture
def runtime(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    rt = start(settings, clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.sessions() as s:
        yield s


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> object:
    """Run `arbot ARGS...` in-process against the test database, with ARBOT_NOW fixing the clock."""
    from handlers.cli.main import main

    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ARBOT_NOW", NOW.isoformat())
    monkeypatch.setenv("ARBOT_TIMEZONE", "America/New_York")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def load(cli: Any, tmp_path: Path) -> Any:
    """`load(*rows)`: `arbot import-csv` of a ledger file of these rows, which must succeed."""
    from tests.support.ledger_files import write

    def run(*rows: dict[str, str]) -> None:
        result = cli("import-csv", str(write(tmp_path / "ledger.csv", list(rows))))
        assert result.code == 0, result.stderr

    return run


@pytest.fixture
def plan(cli: Any) -> Any:
    """`plan(*args)`: `arbot plan --json ARGS`, which must succeed, as the JSON it prints."""

    def run(*args: str) -> dict[str, Any]:
        result = cli("plan", "--json", *args)
        assert result.code == 0, result.stderr
        return dict(json.loads(result.stdout))

    return run


# --- Slack: a local fake Web API, and the real ASGI app served over HTTP ------------------------


@pytest.fixture
def slack_api() -> Iterator[Any]:
    from tests.support.fake_slack import FakeSlack

    fake = FakeSlack(token="xoxb-test", members=["U0APPROVER", "U0SECOND", "U0MEMBER"])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def slack_retries_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk's retries of a call (a connection refused, a 500 on a call safe to repeat) are
    made as many times as ever, but at once: without the wait of half a second, then a second,
    plus up to a second of jitter, between tries. Every retry handler of integrations.slack_chat
    takes its waits from slack_sdk's default interval calculator, set here through its
    `backoff_factor` and `jitter`."""
    from slack_sdk.http_retry.handler import default_interval_calculator
    from slack_sdk.http_retry.jitter import Jitter

    class NoJitter(Jitter):
        def recalculate(self, duration: float) -> float:
            return duration

    monkeypatch.setattr(default_interval_calculator, "backoff_factor", 0.0)
    monkeypatch.setattr(default_interval_calculator, "jitter", NoJitter())


@pytest.fixture
def slack_settings(database_url: str, slack_api: Any) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        approvers=["U0APPROVER", "U0SECOND"],
        business_name="Brightwater Supply Co.",
    )


@pytest.fixture
def slack_runtime(slack_settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    rt = start(slack_settings, clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def deployment(
    database_url: str, slack_api: Any, clock: FixedClock
) -> Iterator[tuple[Runtime, Any]]:
    """A deployment that installs workspaces (tests.support.workspace_setup): its main runtime and its
    Workspaces."""
    from bot.workspaces.registry import Workspaces
    from tests.support.workspace_setup import deployment_settings

    main = start(deployment_settings(database_url, slack_api), clock=clock)
    workspaces = Workspaces(main)
    yield main, workspaces
    workspaces.close()
    main.close()


@pytest.fixture
def served(slack_runtime: Runtime) -> Iterator[Any]:
    """The real ASGI app (Bolt inside Starlette) under uvicorn on a free local port."""
    from tests.support.serving import serve
    from tests.support.slack_requests import SlackRequests

    with serve(slack_runtime) as url:
        requests = SlackRequests(url)
        yield requests
        requests.close()
