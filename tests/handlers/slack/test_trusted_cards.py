"""A card approved automatically because its step earned trust, end to end through the real ASGI
app: it says so, its Undo puts Approve / Edit / Skip back, and its Skip skips it with the Skip
form of a waiting card, until the send worker claims it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Event, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import TRUSTED_APPROVER
from bot.planning import posting
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import buttons_of, message_of, state_of
from tests.support.fake_slack import validate_blocks
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def trusted_card(runtime: Runtime, slack_api: Any, reminder_id: int) -> None:
    """The reminder as the planner stores one of a trusted step's, and its card redrawn so."""
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id)
            .values(state="approved", approved_by=TRUSTED_APPROVER, approved_at=runtime.clock.now())
        )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with runtime.sessions() as session:
        posting.refresh(session, chat, [reminder_id], runtime.settings.timezone)


def test_a_trusted_steps_card_says_approved_automatically_and_undo_brings_the_buttons_back(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    trusted_card(posted, slack_api, 1)
    blocks = json.dumps(message_of(posted, slack_api, 1)["blocks"])
    assert "Approved automatically: this step has earned trust" in blocks
    assert '"undo"' in blocks and "&lt;@" not in blocks and "<@arbot" not in blocks
    served.click("undo", "1")
    wait_for(lambda: state_of(posted, 1) == "planned")
    # the card is redrawn after the ack, with a waiting card's buttons (it had Undo and Skip)
    wait_for(lambda: buttons_of(posted, slack_api, 1) == ["approve", "edit", "skip"])
    with posted.sessions() as session:
        event = session.scalars(
            select(Event).where(Event.kind == "reminder.approval_withdrawn")
        ).one()
    assert (event.actor, event.payload) == ("U0APPROVER", {"approved_by": TRUSTED_APPROVER})


def skip_form(served: Any, slack_api: Any, reminder_id: int, reason: str) -> None:
    served.click("skip", str(reminder_id), trigger_id=f"trigger-skip-{reminder_id}")
    view = wait_for(lambda: slack_api.calls("views.open"))[-1]["view"]
    assert view["callback_id"] == "skip_reminder"
    served.submit(
        "skip_reminder",
        view["private_metadata"],
        {"reason": {"value": {"type": "plain_text_input", "value": reason}}},
    )


def test_a_trusted_steps_card_has_skip_beside_undo_and_skip_asks_why_then_skips_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    trusted_card(posted, slack_api, 1)
    message = message_of(posted, slack_api, 1)
    assert validate_blocks(message["blocks"]) == []
    (row,) = [b for b in message["blocks"] if b.get("block_id") == "reminder_1"]
    assert [e["action_id"] for e in row["elements"]] == ["undo", "skip"]
    skip_form(served, slack_api, 1, "they paid by phone <!channel>")
    wait_for(lambda: state_of(posted, 1) == "skipped")
    wait_for(lambda: "Skipped by" in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    blocks = message_of(posted, slack_api, 1)["blocks"]
    text = json.dumps(blocks)
    assert "Skipped by <@U0APPROVER>" in text and "&lt;!channel&gt;" in text
    assert not any(b.get("block_id") == "reminder_1" for b in blocks)  # no buttons left
    assert validate_blocks(blocks) == []
    with posted.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.approved_by is None
        event = session.scalars(select(Event).where(Event.kind == "reminder.skipped")).one()
    assert (event.actor, event.payload) == (
        "U0APPROVER",
        {"reason": "they paid by phone <!channel>"},
    )


def test_skip_on_a_trusted_card_is_refused_once_the_send_worker_claimed_it(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    trusted_card(posted, slack_api, 1)
    served.click("skip", "1", trigger_id="trigger-skip-1")
    view = wait_for(lambda: slack_api.calls("views.open"))[-1]["view"]
    with posted.writing() as session:  # the send worker claims it while the form is open
        session.execute(update(Reminder).where(Reminder.id == 1).values(state="sending"))
    served.submit(
        "skip_reminder",
        view["private_metadata"],
        {"reason": {"value": {"type": "plain_text_input", "value": "not needed"}}},
    )
    told = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert told[0]["text"].startswith("Nothing changed: this reminder was already sending")
    assert state_of(posted, 1) == "sending"
    served.click("skip", "1", trigger_id="trigger-skip-again")
    wait_for(lambda: len(slack_api.calls("chat.postEphemeral")) >= 2)
    assert slack_api.calls("chat.postEphemeral")[1]["text"].startswith(
        "This reminder can no longer be skipped: it was already sending"
    )
    assert len(slack_api.calls("views.open")) == 1
