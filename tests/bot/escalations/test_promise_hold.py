"""A promise to pay holds the account back through its date plus the grace days, days in the
business's timezone (ARBOT_TIMEZONE), as the missed-promise sweep counts them; and the thread says
the day the sweep acts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.escalations import service, thread
from bot.ledger.upsert import apply_batch
from bot.replies.match import ReplyRules
from bot.replies.sms import handle_sms
from bot.replies.triage import Triage
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

PROMISED = date(2026, 3, 16)  # a Monday; with the default two days' grace, held through Wednesday
GRACE = 2
RECORDED = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # 10:00 in New York, 23:00 in Tokyo
# Wednesday the 18th, 20:30 in New York: the last day of grace there, already Thursday in UTC
NEW_YORK_EVENING = datetime(2026, 3, 19, 0, 30, tzinfo=UTC)
# Thursday the 19th, 08:30 in Tokyo, the first day after the grace: still Wednesday in UTC
TOKYO_MORNING = datetime(2026, 3, 18, 23, 30, tzinfo=UTC)


def _runtime(database_url: str, timezone: str, at: datetime) -> Runtime:
    settings = load_settings(env_file=None, database_url=database_url, timezone=timezone)
    return start(settings, clock=FixedClock(at))


def _promised(runtime: Runtime, tmp_path: Path) -> int:
    """A week-late invoice, and its customer's promise to pay by PROMISED, recorded at RECORDED."""
    rows = [row(invoice_number="INV-7", due_date="2026-03-09")]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), RECORDED)
        customer_id = session.scalars(select(Customer.id)).one()
        service.promise(
            session, customer_id, PROMISED, GRACE, RECORDED, timezone=runtime.settings.timezone
        )
    return customer_id


def _plan_at(cli: Any, monkeypatch: pytest.MonkeyPatch, timezone: str, at: datetime) -> Any:
    monkeypatch.setenv("ARBOT_TIMEZONE", timezone)
    monkeypatch.setenv("ARBOT_NOW", at.isoformat())
    result = cli("plan", "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_in_a_new_york_evening_on_the_last_day_of_grace_the_account_is_still_held(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = _runtime(database_url, "America/New_York", RECORDED)
    try:
        customer_id = _promised(runtime, tmp_path)
        with runtime.sessions() as session:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            # Thursday 00:00 in New York, not Thursday 00:00 UTC (Wednesday 20:00 there)
            assert customer.paused_until == datetime(2026, 3, 19, 4, 0, tzinfo=UTC)
    finally:
        runtime.close()

    planned = _plan_at(cli, monkeypatch, "America/New_York", NEW_YORK_EVENING)

    assert planned["date"] == "2026-03-18"
    assert planned["reminders"] == []
    assert [h["reason"] for h in planned["held"]] == ["paused"]


def test_in_a_tokyo_morning_after_the_grace_the_sequence_resumes(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runtime = _runtime(database_url, "Asia/Tokyo", RECORDED)
    try:
        customer_id = _promised(runtime, tmp_path)
        with runtime.sessions() as session:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            # Thursday 00:00 in Tokyo, not Thursday 00:00 UTC (09:00 there)
            assert customer.paused_until == datetime(2026, 3, 18, 15, 0, tzinfo=UTC)
    finally:
        runtime.close()

    planned = _plan_at(cli, monkeypatch, "Asia/Tokyo", TOKYO_MORNING)

    assert planned["date"] == "2026-03-19"
    assert [r["invoices"] for r in planned["reminders"]] == [["INV-7"]]
    assert planned["held"] == []


@pytest.mark.parametrize(
    ("timezone", "at", "until"),
    [
        ("America/New_York", datetime(2026, 3, 16, 23, 0, tzinfo=UTC), "Thu 19 Mar"),
        ("Asia/Tokyo", datetime(2026, 3, 16, 1, 0, tzinfo=UTC), "Thu 19 Mar"),
    ],
)
def test_the_thread_says_nothing_is_needed_until_the_day_after_the_grace(
    database_url: str, tmp_path: Path, timezone: str, at: datetime, until: str
) -> None:
    """A promise by text for Monday, two days' grace: the sweep clears it on Thursday, the
    business's Thursday, and the thread says so (not Tuesday, the day after the promise)."""
    runtime = _runtime(database_url, timezone, at)
    rules = ReplyRules("k" * 32, grace_days=GRACE, timezone=timezone)
    triage = Triage("promise_to_pay", 0.95, PROMISED, "test")
    try:
        with runtime.writing() as session:
            rows = [row(invoice_number="INV-7", due_date="2026-03-09")]
            apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), at)
        with runtime.writing() as session:
            handle_sms(session, "+13125550142", "paying Monday", "SM1", at, rules, triage, "Acme")
        with runtime.sessions() as session:
            escalation_id = session.scalars(select(Escalation.id)).one()
            shown = thread.view(session, escalation_id, runtime.today(), timezone)
            customer = session.scalars(select(Customer)).one()
            resumes = customer.paused_until
            holding = service.on_hold(session, escalation_id, at, timezone=timezone)
    finally:
        runtime.close()

    assert shown.suggestion.startswith(f"Promise for Mon 16 Mar: nothing to do until {until}")
    assert "2 days' grace" in shown.suggestion
    assert resumes is not None
    assert f"{resumes.astimezone(ZoneInfo(timezone)):%a %d %b}" == until
    # what Resume offers to clear names the same day, the business's
    assert holding["pause"] == "The pause until 2026-03-19"


def test_an_unsure_promise_is_not_recorded_and_the_thread_says_so(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Too unsure to act on, a promise pauses nothing and the sweep never clears it: the thread
    does not say there is nothing to do."""
    rules = ReplyRules("k" * 32, grace_days=GRACE, timezone="America/New_York")
    triage = Triage("promise_to_pay", 0.3, PROMISED, "test")
    at = runtime.clock.now()
    with runtime.writing() as session:
        rows = [row(invoice_number="INV-7", due_date="2026-03-09")]
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), at)
    with runtime.writing() as session:
        handle_sms(session, "+13125550142", "paying Monday?", "SM1", at, rules, triage, "Acme")
    with runtime.sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
        shown = thread.view(session, escalation_id, runtime.today(), "America/New_York")

    assert shown.suggestion == (
        "Promise for Mon 16 Mar, not recorded: record it to hold reminders until then."
    )
