"""`arbot plan` posts the stored plan to the finance channel, and says what to fix when Slack
refuses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.handlers.posted_plan import TODAY
from tests.support.ledger_files import row, write


def test_arbot_plan_posts_the_stored_plan_to_the_finance_channel(
    cli: Any, slack_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    due = (TODAY - timedelta(days=7)).isoformat()
    rows = [
        row(
            customer_id="C-1",
            customer_name="Customer 1",
            invoice_number="I-1",
            issue_date="2026-01-01",
            due_date=due,
        )
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    result = cli("plan")
    assert result.code == 0, result.stderr
    assert "Posted to Slack channel C0FINANCE" in result.stdout
    assert len(slack_api.calls("chat.postMessage")) == 2  # the header and one group
    again = cli("plan")  # nothing new to post
    assert again.code == 0
    assert len([c for c in slack_api.calls("chat.postMessage") if "blocks" in c]) <= 3


def test_arbot_plan_says_what_to_fix_when_slack_refuses(
    cli: Any, slack_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-wrong",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    due = (TODAY - timedelta(days=7)).isoformat()
    rows = [row(issue_date="2026-01-01", due_date=due)]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    result = cli("plan")
    assert result.code == 1
    assert "the plan is stored, but Slack refused it (invalid_auth)" in result.stderr
