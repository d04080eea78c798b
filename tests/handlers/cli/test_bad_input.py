"""What the command line says to input it cannot use: one line on stderr naming what to fix, exit
code 1, and nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.migrate import HEAD_REVISION
from bot.core.models import Escalation, Invoice, Reminder
from tests.support.ledger_files import row, write


def test_a_date_option_outside_arbots_dates_is_refused_by_its_name_and_plans_nothing(
    cli: Any, load: Any, runtime: Any
) -> None:
    load(row(issue_date="2026-01-01", due_date="2026-01-31"))
    result = cli("plan", "--date", "9999-12-31")  # a typo for 2026-12-31
    assert result.code == 1
    assert (
        "--date 9999-12-31 is outside the dates arbot accepts (1990-01-01 to 2100-12-31)"
        in result.stderr
    )
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 0
        assert session.scalar(select(func.count()).select_from(Escalation)) == 0
    for command in (("aging",), ("status", "C-1"), ("forecast",)):
        result = cli(*command, "--as-of", "0001-01-01")  # was a traceback (date out of range)
        assert result.code == 1, command
        assert "--as-of 0001-01-01 is outside the dates arbot accepts" in result.stderr


def test_a_date_that_is_not_one_is_refused_by_the_options_own_name(cli: Any) -> None:
    result = cli("plan", "--date", "2026-02-30")
    assert result.code == 1
    assert "--date '2026-02-30' is not a date; write it as YYYY-MM-DD" in result.stderr


@pytest.mark.parametrize("command", [("aging",), ("db", "upgrade")])
@pytest.mark.parametrize(
    ("url", "said"),
    [
        # a port mistyped, the password kept out of the message
        ("postgresql://arbot:s3cret@localhost:54x2/arbot", "is not a database URL"),
        ("sqlite:///{tmp}/ledger.csv", "file is not a database"),  # a file, not a database
        ("sqlite:////nonexistent-folder/x/arbot.db", "unable to open database file"),
    ],
)
def test_a_database_url_arbot_cannot_open_is_one_line_naming_the_setting(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    url: str,
    said: str,
) -> None:
    (tmp_path / "ledger.csv").write_text("customer_id,customer_name\nC-1,Acme\n")
    monkeypatch.setenv("DATABASE_URL", url.format(tmp=tmp_path))
    result = cli(*command)  # was a traceback, but for aging on a folder that does not exist
    assert result.code == 1
    assert result.stderr.startswith("error: ") and "DATABASE_URL" in result.stderr
    assert said in result.stderr
    assert "s3cret" not in result.stderr
    assert (tmp_path / "ledger.csv").read_text() == "customer_id,customer_name\nC-1,Acme\n"


def test_a_database_a_newer_arbot_upgraded_is_refused_naming_both_schema_revisions(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "newer.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert cli("db", "upgrade").code == 0
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    for command in (("aging",), ("db", "upgrade")):
        result = cli(*command)  # was Alembic's traceback: "Can't locate revision '0099'"
        assert result.code == 1, command
        assert (
            "the database's schema is at revision 0099, which this arbot does not know "
            f"(its newest is {HEAD_REVISION})" in result.stderr
        )
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0099",)
        ]


def test_an_import_while_another_writer_holds_the_database_is_one_line_and_writes_nothing(
    cli: Any,
    database_url: str,
    tmp_path: Path,
    runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL waits for a lock; SQLite gives up after its busy timeout")
    monkeypatch.setattr("bot.core.db.SQLITE_BUSY_TIMEOUT_MS", 100)  # the test need not wait 5 s
    ledger = write(tmp_path / "ledger.csv", [row()])
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another arbot (or program) in the middle of a write
        result = cli("import-csv", str(ledger))  # was an OperationalError traceback
    finally:
        other.rollback()
        other.close()
    assert result.code == 1
    assert result.stderr.startswith("error: the database is busy: another arbot")
    assert "run the command again" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0
    assert cli("import-csv", str(ledger)).code == 0  # once the other writer is done


def test_a_dotenv_file_saved_as_utf16_is_refused_by_its_name_asking_for_utf8(
    cli: Any, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_bytes(b"\xff\xfeA\x00=\x00")  # Notepad's "Unicode"
    for command in (("aging",), ("status", "C-1"), ("db", "upgrade")):
        result = cli(*command)  # was a UnicodeDecodeError traceback
        assert result.code == 1, command
        assert result.stderr.startswith(f"error: the settings file {tmp_path / '.env'} ")
        assert "UTF-16" in result.stderr and "save it as UTF-8" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
