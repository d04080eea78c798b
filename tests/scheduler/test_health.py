"""The health document: database, scheduler, last sync, last plan and send backlog; unhealthy
when the database does not answer or a scheduler that should run has stopped."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from bot.core.models import Reminder, SyncState
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from scheduler.business_days import business_days
from scheduler.daily import morning_plan
from scheduler.health import health
from scheduler.leader import FileLock
from scheduler.runner import Runner


def test_health_tells_the_last_plan_the_last_sync_and_what_waits_to_be_sent(
    ledger: None, slack_runtime: Runtime
) -> None:
    outcome = morning_plan(slack_runtime, business_days(slack_runtime.settings), "a:1")
    now = slack_runtime.clock.now()
    with slack_runtime.writing() as session:
        session.execute(
            update(Reminder).where(Reminder.id == 1).values(state="approved", send_after=now)
        )
        session.add(SyncState(source="quickbooks", synced_at=now, summary={}))

    ok, doc = health(slack_runtime, None)

    assert ok and doc["status"] == "ok" and doc["database"] == "ok"
    assert doc["scheduler"] == {"role": "off"}
    assert doc["last_plan"] == {
        "day": "2026-03-16",
        "started_at": now.isoformat(),
        "finished_at": now.isoformat(),
        "outcome": outcome,
        "instance": "a:1",
    }
    assert doc["last_sync"] == {
        "at": now.isoformat(),
        "connected": [],
        "sources": {"quickbooks": now.isoformat()},
        "failing": {},
    }
    assert doc["send_backlog"] == {"due": 1, "oldest_due_since": now.isoformat(), "sending": 0}


def test_a_database_that_does_not_answer_makes_the_service_unhealthy(tmp_path: Path) -> None:
    gone = tmp_path / "no-such-folder" / "arbot.db"
    runtime = start(load_settings(env_file=None, database_url=f"sqlite:///{gone}"), upgrade=False)
    try:
        ok, doc = health(runtime, None)
    finally:
        runtime.close()
    assert not ok
    assert doc["status"] == "unhealthy"
    assert doc["database"].startswith("error: unable to open database file")


def test_a_stopped_scheduler_is_unhealthy_and_one_refused_on_sqlite_is_not(
    runtime: Runtime, tmp_path: Path
) -> None:
    lock = tmp_path / "arbot.db.scheduler.lock"
    leading = Runner([], FileLock(lock, "host-a:1"), "host-a:1")
    refused = Runner([], FileLock(lock, "host-b:2"), "host-b:2")
    leading.start()
    refused.start()
    try:
        ok_leading, leading_doc = health(runtime, leading)
        ok_refused, refused_doc = health(runtime, refused)
    finally:
        leading.stop()
    ok_stopped, stopped_doc = health(runtime, leading)

    assert ok_leading and leading_doc["scheduler"]["role"] == "leader"
    assert leading_doc["scheduler"]["running"] is True
    assert ok_refused and refused_doc["scheduler"]["role"] == "refused"
    assert "process host-a:1 already runs the scheduled jobs" in refused_doc["scheduler"]["detail"]
    assert not ok_stopped and stopped_doc["status"] == "unhealthy"
    assert stopped_doc["scheduler"]["running"] is False
