"""`arbot plan` when Slack cannot be reached or the bot is not in the channel: one line that says
what happened and what to do, exit code 1, and the plan stays stored for the sweep to post."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from bot.core.models import Reminder
from tests.handlers.posted_plan import TODAY
from tests.support.ledger_files import row, write

# A Slack out of reach is tried as often as ever, without waiting between the tries.
pytestmark = pytest.mark.usefixtures("slack_retries_at_once")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nobody listens there once it is closed


def _ledger(cli: Any, tmp_path: Path) -> None:
    due = (TODAY - timedelta(days=7)).isoformat()
    rows = [row(issue_date="2026-01-01", due_date=due)]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0


def _stored(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count(Reminder.id))) or 0)
    finally:
        engine.dispose()


def test_arbot_plan_answers_an_unreachable_slack_with_one_line_and_keeps_the_plan(
    cli: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": f"http://127.0.0.1:{_closed_port()}/api/",
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    _ledger(cli, tmp_path)
    result = cli("plan")
    assert result.code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "the plan is stored, but Slack could not be reached" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert _stored(database_url) == 1


def test_arbot_plan_names_the_channel_and_says_invite_when_the_bot_is_not_in_it(
    cli: Any, slack_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    _ledger(cli, tmp_path)
    slack_api.fail_next("chat.postMessage", "not_in_channel")
    result = cli("plan")
    assert result.code == 1
    assert "arbot is not in the Slack channel C0FINANCE" in result.stderr
    assert "/invite @arbot" in result.stderr
