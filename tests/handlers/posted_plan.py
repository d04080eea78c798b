"""A day's plan posted to Slack (three customers a week late, cards waiting for approval), and how
to read a reminder's state and its card back; the `posted` fixture is in conftest.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import a_week_late, write

TODAY = date(2026, 3, 16)


def ledger(runtime: Runtime, tmp_path: Path, customers: int = 3) -> None:
    rows = a_week_late(customers)
    batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())


def make_plan(runtime: Runtime) -> None:
    """Today's plan, stored."""
    with runtime.writing() as session:
        run_plan(
            session, PlanRules.from_settings(runtime.settings), TODAY, runtime.clock.now(), False
        )


def post_stored_plan(runtime: Runtime, slack_api: Any) -> None:
    """Today's stored plan, posted to the finance channel."""
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    posting.post_plan(runtime, chat, "C0FINANCE", TODAY)


def post_plan(runtime: Runtime, slack_api: Any) -> None:
    make_plan(runtime)
    post_stored_plan(runtime, slack_api)


def state_of(runtime: Runtime, reminder_id: int) -> str:
    with runtime.sessions() as session:
        return session.scalar(select(Reminder.state).where(Reminder.id == reminder_id)) or ""


def message_of(runtime: Runtime, slack_api: Any, reminder_id: int) -> dict[str, Any]:
    """The Slack message that holds this reminder's card, as the fake Web API keeps it."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        key = (reminder.slack_channel, reminder.slack_ts)
    return slack_api.messages[key]


def buttons_of(runtime: Runtime, slack_api: Any, reminder_id: int) -> list[str]:
    """The action_ids of the buttons on this reminder's card as Slack shows it now (its message
    holds other cards too)."""
    for block in message_of(runtime, slack_api, reminder_id)["blocks"]:
        if block.get("block_id") == f"reminder_{reminder_id}":
            elements = block.get("elements") or [block["accessory"]]
            return [element["action_id"] for element in elements]
    return []


def approve_value(runtime: Runtime, slack_api: Any, reminder_id: int) -> str:
    """The value of the Approve button on this reminder's card as Slack shows it now: what a
    click on it sends (the reminder, and the version of the message the card shows)."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        key = (reminder.slack_channel, reminder.slack_ts)
    return approve_value_in(slack_api.messages[key], reminder_id)


def approve_value_in(message: dict[str, Any], reminder_id: int) -> str:
    """The value of the Approve button on this reminder's card in a message as Slack keeps it."""
    for block in message["blocks"]:
        if block.get("block_id") == f"reminder_{reminder_id}":
            for element in block.get("elements") or []:
                if element["action_id"] == "approve":
                    return str(element["value"])
    raise AssertionError(f"reminder {reminder_id}'s card has no Approve button")
