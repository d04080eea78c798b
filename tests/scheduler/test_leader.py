"""Leadership. On PostgreSQL a lease in the database: its holder renews it every poll, another
replica takes it over once it has seen it unchanged for a whole lease, and a leader that was
frozen finds, when it wakes, that it no longer leads, and runs no leader's job. The lease runs on
both databases here, with a stopwatch the tests move instead of the machine's clock. On SQLite
one holder of the file lock, which names itself to the process it turns away."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import event, select

from bot.core.db import make_engine
from bot.core.errors import UserError
from bot.core.models import SchedulerLease
from scheduler.jobs import Job
from scheduler.leader import (
    LEASE_SECONDS,
    POLL_SECONDS,
    AlwaysLeader,
    DatabaseLease,
    FileLock,
    leadership_for,
)
from scheduler.runner import Runner, leader_lease_seconds, leader_poll_seconds, wall_clock
from tests.support.slack_requests import wait_for

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]
FAILOVER_BOUND = 30.0  # what the documentation promises with the default settings


class Stopwatch:
    """Elapsed seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def stopwatch() -> Stopwatch:
    return Stopwatch()


@pytest.fixture
def replicas(database_url: str, stopwatch: Stopwatch) -> Any:
    """Make leases on the test database, on one stopwatch; each lets go at the end."""
    made: list[DatabaseLease] = []

    def make(instance: str, lease: float = LEASE_SECONDS) -> DatabaseLease:
        made.append(DatabaseLease(database_url, instance, lease, POLL_SECONDS, clock=stopwatch))
        return made[-1]

    yield make
    for lease in made:
        lease.release()


def _lease_row(database_url: str) -> tuple[str | None, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            holder, term = connection.execute(
                select(SchedulerLease.holder, SchedulerLease.term)
            ).one()
    finally:
        engine.dispose()
    return holder, term


def test_the_leader_keeps_the_lease_while_it_renews_it_and_no_one_else_takes_it(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader, follower = replicas("a:1"), replicas("b:2")
    assert leader.acquire()
    assert not follower.acquire()
    assert follower.holder() == "a:1"
    for _ in range(20):  # well past several leases, renewed at every poll
        stopwatch.advance(POLL_SECONDS)
        assert leader.acquire()
        assert not follower.acquire()
    assert leader.holder() == "a:1"


def test_a_frozen_leader_is_replaced_within_30_seconds_and_when_it_wakes_it_does_not_lead(
    replicas: Any, stopwatch: Stopwatch, database_url: str
) -> None:
    leader, follower = replicas("a:1"), replicas("b:2")
    assert leader.acquire()
    half_a_poll = POLL_SECONDS / 2  # the follower polls between the leader's renewals
    stopwatch.advance(half_a_poll)
    assert not follower.acquire()
    stopwatch.advance(half_a_poll)
    assert leader.acquire()  # its last renewal: then SIGSTOP (or a GC pause, a debugger)
    frozen_at = stopwatch()

    taken_at = None
    while taken_at is None and stopwatch() - frozen_at <= 2 * FAILOVER_BOUND:
        stopwatch.advance(half_a_poll)
        if follower.acquire():
            taken_at = stopwatch()
        stopwatch.advance(half_a_poll)
    assert taken_at is not None, "the follower never took over"
    assert LEASE_SECONDS <= taken_at - frozen_at <= LEASE_SECONDS + 2 * POLL_SECONDS
    assert LEASE_SECONDS + 2 * POLL_SECONDS <= FAILOVER_BOUND

    assert not leader.acquire()  # it wakes: the term it holds is gone
    assert leader.holder() == "b:2"
    assert _lease_row(database_url) == ("b:2", 2)
    stopwatch.advance(POLL_SECONDS)
    assert follower.acquire()
    assert not leader.acquire()


def test_a_renewal_answered_after_the_lease_could_have_passed_on_does_not_let_the_leader_lead(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader = replicas("a:1")
    assert leader.acquire()

    def frozen_while_asking(*_args: Any) -> None:
        stopwatch.advance(LEASE_SECONDS)

    engine = leader._engine
    event.listen(engine, "after_cursor_execute", frozen_while_asking)
    assert not leader.acquire()  # the row took the renewal, but another may take it over now
    event.remove(engine, "after_cursor_execute", frozen_while_asking)
    assert leader.acquire()  # no one did: still its own


def test_two_followers_that_see_the_lease_lapse_together_take_it_over_only_once(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader, second, third = replicas("a:1"), replicas("b:2"), replicas("c:3")
    assert leader.acquire()
    assert not second.acquire() and not third.acquire()
    stopwatch.advance(LEASE_SECONDS)
    assert second.acquire()
    assert not third.acquire()  # what it saw changed under it: it watches the new holder
    stopwatch.advance(LEASE_SECONDS - 0.1)
    assert second.acquire() and not third.acquire()
    assert third.holder() == "b:2"


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_of_two_followers_that_read_a_lapsed_lease_at_the_same_moment_only_one_takes_it(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader, second, third = replicas("a:1"), replicas("b:2"), replicas("c:3")
    assert leader.acquire()
    assert not second.acquire() and not third.acquire()
    stopwatch.advance(LEASE_SECONDS)
    taken_between: list[bool] = []

    def second_takes_it_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT") and not taken_between:
            taken_between.append(second.acquire())

    engine = third._engine
    event.listen(engine, "after_cursor_execute", second_takes_it_meanwhile)
    try:
        assert not third.acquire()  # it read the lapsed lease, but what it read is gone
    finally:
        event.remove(engine, "after_cursor_execute", second_takes_it_meanwhile)
    assert taken_between == [True]
    assert third.holder() == "b:2"


def test_a_leader_that_stops_lets_the_lease_go_and_the_next_poll_takes_it(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader, follower = replicas("a:1"), replicas("b:2")
    assert leader.acquire()
    assert not follower.acquire()
    leader.release()  # SIGTERM
    assert follower.acquire()  # at once, with no lease to wait out
    assert follower.holder() == "b:2"


def test_a_holder_with_a_longer_lease_than_the_followers_is_given_all_of_it(
    replicas: Any, stopwatch: Stopwatch
) -> None:
    leader, follower = replicas("a:1", lease=60), replicas("b:2")
    assert leader.acquire()
    assert not follower.acquire()
    stopwatch.advance(59)
    assert not follower.acquire()
    stopwatch.advance(1)
    assert follower.acquire()


def test_a_leaders_job_that_fires_after_another_replica_took_the_lease_is_not_run(
    database_url: str, stopwatch: Stopwatch, replicas: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []

    def swept() -> str:
        runs.append("swept")
        return "swept"

    sweep = Job("sweep", IntervalTrigger(hours=1), swept)
    lease = DatabaseLease(database_url, "a:1", LEASE_SECONDS, POLL_SECONDS, clock=stopwatch)
    # The poll comes once, at the start: only the job's own check can see the lease is gone.
    runner = Runner([sweep], lease, "a:1", poll_seconds=3600)
    caplog.set_level(logging.INFO, logger="scheduler")
    try:
        runner.start()
        wait_for(lambda: runs)  # it leads, and runs its job once at once
        other = replicas("b:2")
        assert not other.acquire()
        stopwatch.advance(LEASE_SECONDS)  # a:1 is frozen for a whole lease
        assert other.acquire()

        runner._scheduler.modify_job("sweep", next_run_time=wall_clock())  # a:1 wakes: it is due
        refused = "sweep not run here: this replica (a:1) does not lead"
        wait_for(lambda: refused in _said(caplog) or len(runs) > 1)
        assert runs == ["swept"]
        assert runner.status().role == "follower"
        [stepping_down] = [m for m in _said(caplog) if m.startswith("stepping down")]
        assert stepping_down.startswith("stepping down: this replica (a:1) no longer leads")
        assert "b:2 holds the lease" in stepping_down
    finally:
        runner.stop()


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in list(caplog.records) if r.name.startswith("scheduler")]


def test_the_lease_must_outlast_two_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert leader_poll_seconds() == POLL_SECONDS
    assert leader_lease_seconds(POLL_SECONDS) == LEASE_SECONDS
    monkeypatch.setenv("ARBOT_LEADER_LEASE_SECONDS", "8")
    with pytest.raises(UserError, match="ARBOT_LEADER_LEASE_SECONDS: 8 is shorter than two polls"):
        leader_lease_seconds(POLL_SECONDS)
    monkeypatch.setenv("ARBOT_LEADER_POLL_SECONDS", "soon")
    with pytest.raises(UserError, match="ARBOT_LEADER_POLL_SECONDS: 'soon' is not a number"):
        leader_poll_seconds()
    monkeypatch.setenv("ARBOT_LEADER_POLL_SECONDS", "0")
    with pytest.raises(UserError, match="not a positive number of seconds"):
        leader_poll_seconds()


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
    on_postgres = leadership_for("postgresql://u@127.0.0.1/x", "a:1", 20, 4)
    assert isinstance(on_postgres, DatabaseLease)
    assert (on_postgres.lease_seconds, on_postgres.trust_seconds) == (20, 16)
