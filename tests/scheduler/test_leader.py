"""Leadership: one holder of the PostgreSQL advisory lock, which a leader whose session ended
knows it lost and another replica then takes; on SQLite one holder of the file lock, which names
itself to the process it turns away."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.db import make_engine
from scheduler.leader import AlwaysLeader, FileLock, PostgresLock, leadership_for

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_one_replica_holds_the_lock_and_another_takes_it_when_the_leaders_session_ends(
    database_url: str,
) -> None:
    first, second = PostgresLock(database_url, "a:1"), PostgresLock(database_url, "b:2")
    try:
        assert first.acquire() and first.acquire()  # taken, then checked
        assert not second.acquire()
        assert second.holder() == "arbot scheduler a:1"

        engine = make_engine(database_url)
        with engine.begin() as connection:  # the leader's connection dies (a crash, a restart)
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'arbot scheduler a:1'"
                )
            ).scalars()
            assert list(ended) == [True]
        engine.dispose()

        assert not first.acquire()  # it notices, and stops leading
        assert second.acquire()
        assert not first.acquire()
        assert first.holder() == "arbot scheduler b:2"
    finally:
        first.release()
        second.release()


def test_on_sqlite_the_first_process_keeps_the_lock_and_is_named_to_the_next(
    tmp_path: Path,
) -> None:
    path = tmp_path / "arbot.db.scheduler.lock"
    first, second = FileLock(path, "host-a:101"), FileLock(path, "host-b:202")
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == "host-a:101"
    first.release()
    assert second.acquire()
    second.release()


def test_the_kind_of_leadership_follows_the_database(tmp_path: Path) -> None:
    on_file = leadership_for(f"sqlite:///{tmp_path / 'arbot.db'}", "a:1")
    assert isinstance(on_file, FileLock)
    assert on_file.path == tmp_path / "arbot.db.scheduler.lock"
    assert isinstance(leadership_for("sqlite://", "a:1"), AlwaysLeader)
    assert isinstance(leadership_for("postgresql://u@127.0.0.1/x", "a:1"), PostgresLock)
