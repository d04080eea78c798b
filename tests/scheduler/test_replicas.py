"""`arbot serve` as real processes. On PostgreSQL two replicas make one morning plan, share the
sending without sending anything twice, and when the leader is killed (SIGKILL) or frozen
(SIGSTOP) the other takes over its jobs; a frozen leader that wakes steps down. On SQLite a second
process refuses to run the scheduler, says who has it, and still serves HTTP. SIGTERM lets the
send worker finish its tick before the process exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.core.models import Escalation, Event, Reminder, ScheduledRun
from bot.core.runtime import Runtime
from bot.escalations import service
from tests.conftest import NOW
from tests.scheduler.conftest import plan_headers
from tests.support.ledger_files import a_week_late, write
from tests.support.slack_requests import PATIENCE, PROCESS_PATIENCE, wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # `arbot serve` processes

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]
SECRET = "replica-test-secret-key-0123456789"
HEALTH_TOKEN = "replica-test-health-token"
LEASE_SECONDS = 4  # with polls of 0.3 s: a frozen or killed leader is replaced within 4.6 s
FAILOVER_BOUND = 30.0  # what the documentation promises with the default settings
# Between two looks at the database, a log or /healthz while waiting on the replicas: each look
# takes CPU from the replicas starting up or working (at a hundred looks a second, about 2 s of
# CPU over these tests). A look at the mailbox costs nothing and stays at wait_for's pace.
LOOK_EVERY = 0.1


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far (anything else it printed is skipped, and so is a last
        line it is still writing)."""
        found = []
        for line in self.log.read_text(encoding="utf-8").split("\n")[:-1]:
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def said(self, words: str) -> bool:
        return any(words in line["message"] for line in self.lines())

    def healthz(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=PATIENCE).status_code

    def scheduler(self) -> dict[str, Any]:
        """The scheduler part of its /healthz: role and each job's last result."""
        answer = httpx.get(
            f"http://127.0.0.1:{self.port}/healthz",
            headers={"Authorization": f"Bearer {HEALTH_TOKEN}"},
            timeout=PATIENCE,
        )
        found: dict[str, Any] = answer.json()["scheduler"]
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=PROCESS_PATIENCE)


def until(condition: Callable[[], Any]) -> Any:
    """wait_for the replicas: PROCESS_PATIENCE at most, LOOK_EVERY between looks."""
    return wait_for(condition, timeout=PROCESS_PATIENCE, interval=LOOK_EVERY)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def serve_env(database_url: str, slack_api: Any, smtp: SmtpServer) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "ARBOT_NOW": NOW.isoformat(),  # Monday 16 March 2026, 09:00 in New York
        "ARBOT_TIMEZONE": "America/New_York",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "ARBOT_FROM_EMAIL": "ar@brightwater.example",
        "ARBOT_SECRET_KEY": SECRET,
        "ARBOT_LOG_JSON": "true",
        "ARBOT_LEADER_POLL_SECONDS": "0.3",
        "ARBOT_LEADER_LEASE_SECONDS": str(LEASE_SECONDS),
        "ARBOT_HEALTH_TOKEN": HEALTH_TOKEN,
        "ARBOT_SEND_EVERY_SECONDS": "0.3",
        "ARBOT_SEND_BATCH": "10",
    }


@pytest.fixture
def spawn(serve_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    started: list[Replica] = []

    def start(name: str) -> Replica:
        port = _free_port()
        log = tmp_path / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "handlers.cli.main", "serve", "--port", str(port)],
                env=serve_env,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(process, port, log)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        if replica.process.poll() is None:
            replica.process.kill()
            replica.process.wait(timeout=PROCESS_PATIENCE)


def _import(cli: Any, tmp_path: Path, customers: int) -> None:
    path = write(tmp_path / "ledger.csv", a_week_late(customers))
    assert cli("import-csv", str(path)).code == 0


def _escalate(runtime: Runtime, customer_id: int) -> None:
    with runtime.writing() as session:
        service.open_or_add(
            session, customer_id, "reply", runtime.clock.now(), detail="asked for a call"
        )


def _posted_escalations(runtime: Runtime) -> Counter[int]:
    with runtime.sessions() as session:
        return Counter(
            session.scalars(select(Event.customer_id).where(Event.kind == "escalation.posted"))
        )


def _plan_run(runtime: Runtime) -> ScheduledRun | None:
    with runtime.sessions() as session:
        run = session.scalars(
            select(ScheduledRun).where(ScheduledRun.job == "morning_plan")
        ).first()
    return run if run is not None and run.finished_at is not None else None


def _states(runtime: Runtime) -> Counter[str]:
    with runtime.sessions() as session:
        return Counter(session.scalars(select(Reminder.state)))


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_two_replicas_plan_once_and_the_survivor_takes_over_when_the_leader_is_killed(
    cli: Any, runtime: Runtime, slack_api: Any, smtp: SmtpServer, spawn: Any, tmp_path: Path
) -> None:
    customers = 20
    _import(cli, tmp_path, customers)
    _escalate(runtime, 1)  # waiting for the leader's first sweep
    smtp.mailbox.slow_data_seconds = 0.1  # so the kill below lands while mail is going out

    replicas = [spawn("a"), spawn("b")]
    run = until(lambda: _plan_run(runtime))
    until(lambda: _posted_escalations(runtime)[1])
    leader_pid = int(run.instance.rsplit(":", 1)[1])
    [leader] = [r for r in replicas if r.process.pid == leader_pid]
    [follower] = [r for r in replicas if r is not leader]

    with runtime.writing() as session:  # a person approves the whole plan
        session.execute(
            update(Reminder)
            .where(Reminder.state == "planned")
            .values(state="approved", approved_by="U0APPROVER", approved_at=NOW)
        )
    wait_for(lambda: smtp.mailbox.messages, timeout=PROCESS_PATIENCE)
    _escalate(runtime, 2)  # the leader has swept already: only a new leader posts this one
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=PROCESS_PATIENCE)

    until(lambda: _posted_escalations(runtime)[2])
    until(lambda: _states(runtime)["approved"] == 0)
    assert follower.said("now runs the scheduled jobs")
    assert follower.healthz() == 200
    assert follower.stop() == 0

    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    with runtime.sessions() as session:
        runs = session.execute(select(ScheduledRun.job, func.count()).group_by(ScheduledRun.job))
        assert dict(runs.all()) == {"morning_plan": 1, "weekly_review": 1}
        assert session.scalar(select(func.count()).select_from(Escalation)) == 2
    assert _posted_escalations(runtime) == {1: 1, 2: 1}
    sent = Counter(smtp.mailbox.message_ids())
    assert max(sent.values()) == 1, "a reminder went out twice"
    states = _states(runtime)
    # at most the few the killed leader had moved to sending together (ARBOT_SEND_BATCH)
    assert states["sending"] <= 10
    assert states["sent"] + states["sending"] == customers - 1  # C-1 waits for its escalation
    assert states["sent"] <= len(sent) <= customers - 1


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
def test_a_frozen_leader_is_replaced_within_its_lease_and_steps_down_when_it_wakes(
    cli: Any, runtime: Runtime, slack_api: Any, spawn: Any, tmp_path: Path
) -> None:
    _import(cli, tmp_path, 3)
    replicas = [spawn("a"), spawn("b")]
    until(lambda: _plan_run(runtime))
    roles = until(lambda: _roles_once_both_answer(replicas))
    assert sorted(roles) == ["follower", "leader"]
    leader, follower = (replicas[0], replicas[1]) if roles[0] == "leader" else replicas[::-1]
    leaders_jobs = {"morning_plan", "sync", "sweep", "weekly_review"}
    until(lambda: set(_leaders_job_results(leader)) == leaders_jobs)
    ran_before = _leaders_job_results(leader)  # each ran once when it came to lead

    leader.process.send_signal(signal.SIGSTOP)  # as a GC pause, a swap storm or a debugger would
    frozen_at = time.monotonic()
    try:
        _escalate(runtime, 1)  # only a leader's sweep posts it
        until(lambda: follower.said("now runs the scheduled jobs"))
        took = time.monotonic() - frozen_at
        until(lambda: _posted_escalations(runtime)[1])
    finally:
        leader.process.send_signal(signal.SIGCONT)
    assert took < FAILOVER_BOUND

    until(lambda: leader.said("stepping down"))
    [stepped] = [line for line in leader.lines() if "stepping down" in line["message"]]
    assert stepped["level"] == "WARNING"
    assert f":{follower.process.pid} holds the lease" in stepped["message"]
    assert leader.scheduler()["role"] == "follower"
    assert _leaders_job_results(leader) == ran_before  # no leader's job ran after it woke
    assert follower.scheduler()["jobs"]["morning_plan"]["outcome"] == (
        "the plan of 2026-03-16 was already made"
    )
    assert leader.stop() == 0 and follower.stop() == 0

    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]
    with runtime.sessions() as session:
        plans = session.scalar(
            select(func.count()).select_from(ScheduledRun).where(ScheduledRun.job == "morning_plan")
        )
    assert plans == 1
    assert _posted_escalations(runtime) == {1: 1}


def _roles_once_both_answer(replicas: list[Replica]) -> list[str] | None:
    try:
        roles = [replica.scheduler()["role"] for replica in replicas]
    except httpx.TransportError:
        return None  # not listening yet
    return roles if "leader" in roles else None


def _leaders_job_results(replica: Replica) -> dict[str, Any]:
    """When each of the leader's jobs last ran on this replica, and what it did."""
    jobs: dict[str, Any] = replica.scheduler()["jobs"]
    return {name: result for name, result in jobs.items() if name != "send"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_second_process_refuses_the_scheduler_says_who_has_it_and_serves_http(
    cli: Any, runtime: Runtime, slack_api: Any, spawn: Any, tmp_path: Path, database_url: str
) -> None:
    _import(cli, tmp_path, 3)
    first = spawn("first")
    # The second starts once the first holds the scheduler, and starts up while the first plans.
    until(lambda: first.said("running the scheduled jobs"))
    second = spawn("second")

    until(lambda: second.said("scheduler not started"))
    [refusal] = [line for line in second.lines() if "scheduler not started" in line["message"]]
    assert refusal["level"] == "WARNING"
    assert f":{first.process.pid} already runs the scheduled jobs" in refusal["message"]
    assert database_url.removeprefix("sqlite:///") + ".scheduler.lock" in refusal["message"]
    until(lambda: _healthy(second))
    until(lambda: _plan_run(runtime))
    assert first.stop() == 0 and second.stop() == 0
    assert plan_headers(slack_api) == ["Collections plan for 2026-03-16"]


def _healthy(replica: Replica) -> bool:
    try:
        return replica.healthz() == 200
    except httpx.TransportError:
        return False  # not listening yet


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_lets_the_send_worker_finish_its_tick_before_the_process_exits(
    cli: Any, runtime: Runtime, smtp: SmtpServer, spawn: Any, tmp_path: Path
) -> None:
    customers = 6
    _import(cli, tmp_path, customers)
    assert cli("plan").code == 0
    with runtime.writing() as session:
        session.execute(
            update(Reminder).values(state="approved", approved_by="U0APPROVER", approved_at=NOW)
        )
    smtp.mailbox.slow_data_seconds = 0.4

    replica = spawn("only")
    wait_for(lambda: smtp.mailbox.messages, timeout=PROCESS_PATIENCE)
    replica.process.send_signal(signal.SIGTERM)

    assert replica.process.wait(timeout=PROCESS_PATIENCE) == 0
    assert _states(runtime) == {"sent": customers}
    assert sorted(Counter(smtp.mailbox.message_ids()).values()) == [1] * customers
