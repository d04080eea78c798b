"""The plan explains itself in Slack, through the real app with signed requests and the fake Web
API: a card's Preview opens the whole message in a modal, the header names who is held back and
why (then Show all), `/ar held` lists them and `/ar status` says it for one customer, and an
account handed to a person is shown once, as its escalation, and named in the header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger import accounts
from bot.planning import held, posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import TODAY, ledger
from tests.support.fake_slack import validate_blocks
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

PAUSED = 11  # more than the header names: the rest are behind Show all


def plan_with_held(runtime: Runtime, slack_api: Any, tmp_path: Path) -> None:
    """Fifteen customers a week late, the last eleven paused: four cards, eleven held back."""
    ledger(runtime, tmp_path, customers=15)
    now = runtime.clock.now()
    with runtime.writing() as session:
        for n in range(5, 5 + PAUSED):
            accounts.pause(session, f"C-{n}", "14d", "asked for time", "U0APPROVER", now)
    with runtime.writing() as session:
        run = run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    posting.post_plan(runtime, chat, "C0FINANCE", TODAY, held.to_store(run.plan.held))


def test_preview_opens_the_whole_message_escaped_and_split_to_fit(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    body = "Hello <team> & friends,\n\n" + "Please find the invoice attached. " * 200 + "\nTHE END"
    with posted.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(body_text=body))
    served.click("preview", "1")
    view = wait_for(lambda: slack_api.calls("views.open"))[0]["view"]
    assert validate_blocks(view["blocks"], "/view/blocks", 100) == []
    sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections)
    assert len(sections) >= 4  # the header, the subject, and the 6,700-character text in pieces
    text = "\n".join(sections)
    assert "Hello &lt;team&gt; &amp; friends" in text and "THE END" in text
    shown = " ".join(" ".join(sections[2:]).split())
    assert shown == " ".join(
        body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split()
    )
    assert "Third reminder, 7 days late" in sections[0]  # courtesy, due today, then this
    assert "*Subject:*" in sections[1]


def test_preview_is_refused_outside_the_finance_channel_to_a_non_approver(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.click("preview", "1", user="U0MEMBER", channel="C0GENERAL")
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "approvers and in the finance channel" in told[0]["text"]
    assert slack_api.calls("views.open") == []


def test_the_header_names_who_is_held_and_why_and_show_all_lists_everyone(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    plan_with_held(slack_runtime, slack_api, tmp_path)
    header = slack_api.calls("chat.postMessage")[0]
    assert validate_blocks(header["blocks"]) == []
    text = json.dumps(header["blocks"])
    assert f"Held back today* ({PAUSED})" in text
    assert text.count("): paused") == 8 and f"and {PAUSED - 8} more" in text  # the limit
    assert "*Customer 10* (C-10): paused" in text  # by name
    button = next(b["accessory"] for b in header["blocks"] if "accessory" in b)
    assert button["action_id"] == "show_held"
    served.click("show_held", button["value"])
    view = wait_for(lambda: slack_api.calls("views.open"))[0]["view"]
    assert validate_blocks(view["blocks"], "/view/blocks", 100) == []
    listed = json.dumps(view["blocks"])
    assert all(f"*Customer {n}* (C-{n}): paused" in listed for n in range(5, 5 + PAUSED))


def test_ar_held_lists_who_is_held_and_ar_status_says_it_for_one(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path
) -> None:
    plan_with_held(slack_runtime, slack_api, tmp_path)
    listed = served.command("held").json()["text"]
    assert f"({PAUSED})" in listed and "*Customer 15* (C-15): paused" in listed
    assert (
        "Held back today* (2026-03-16): *Customer 7* (C-7): paused"
        in (served.command("status C-7").json()["text"])
    )
    assert "is not held back in today's plan" in served.command("status C-1").json()["text"]
    assert "`/ar held`" in served.command("help").json()["text"]
