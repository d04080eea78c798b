"""A finance person's morning, counted: a 50-reminder plan across every tier is cleared from Slack
with one *Approve all* per tier, at most five clicks (the confirmation each asks for is answered in
Slack's client, not sent to arbot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import TIERS
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from tests.handlers.posted_plan import post_plan
from tests.support.ledger_files import a_week_late, write
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

REMINDERS = 50
MOST_CLICKS = 5


def approve_all_buttons(slack_api: Any) -> list[dict[str, Any]]:
    """Every Approve all button the posted plan shows, as a person would find them."""
    buttons = []
    for call in slack_api.calls("chat.postMessage"):
        for block in call.get("blocks") or []:
            if block["type"] != "actions":
                continue
            buttons += [e for e in block["elements"] if e["action_id"].startswith("approve_all_")]
    return buttons


def test_a_fifty_reminder_morning_clears_in_at_most_five_clicks(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    rows = a_week_late(REMINDERS)
    for n, row in enumerate(rows):
        row["tier"] = TIERS[n % len(TIERS)]
    with slack_runtime.writing() as session:
        apply_batch(
            session, read_ledger_csv(write(tmp_path / "l.csv", rows)), slack_runtime.clock.now()
        )
    post_plan(slack_runtime, slack_api)

    def waiting() -> int:
        with slack_runtime.sessions() as session:
            return (
                session.scalar(
                    select(func.count()).select_from(Reminder).where(Reminder.state == "planned")
                )
                or 0
            )

    assert waiting() == REMINDERS
    clicks = 0
    for button in approve_all_buttons(slack_api):
        assert "confirm" in button  # asked first, in Slack
        served.click(button["action_id"], button["value"])
        clicks += 1
    wait_for(lambda: waiting() == 0)
    assert clicks <= MOST_CLICKS
    with slack_runtime.sessions() as session:
        approved = session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.state == "approved")
        )
    assert approved == REMINDERS
