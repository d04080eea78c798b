"""Shared pieces for the scheduler's tests: a small overdue ledger, a runtime on the wall clock
(which time-machine moves), and readers for what reached Slack and `scheduled_runs`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import SystemClock
from bot.core.models import ScheduledRun
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import a_week_late, write

CUSTOMERS = 3


@pytest.fixture
def ledger(cli: Any, tmp_path: Path) -> None:
    """Customers C-1..C-3, each with an invoice a week late on Monday 2026-03-16."""
    result = cli("import-csv", str(write(tmp_path / "ledger.csv", a_week_late(CUSTOMERS))))
    assert result.code == 0, result.stderr


@pytest.fixture
def wall_runtime(slack_settings: Settings) -> Iterator[Runtime]:
    """A runtime on the system clock, as `arbot serve` has: time-machine moves it."""
    rt = start(slack_settings, clock=SystemClock())
    yield rt
    rt.close()


@pytest.fixture
def slack_chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def plan_headers(slack_api: Any) -> list[str]:
    """The text of each plan header posted ("Collections plan for 2026-03-16")."""
    return [
        c["text"]
        for c in slack_api.calls("chat.postMessage")
        if str(c.get("text", "")).startswith("Collections plan for")
    ]


def scheduled_runs(runtime: Runtime) -> list[ScheduledRun]:
    with runtime.sessions() as session:
        return list(
            session.scalars(select(ScheduledRun).order_by(ScheduledRun.day, ScheduledRun.job))
        )
