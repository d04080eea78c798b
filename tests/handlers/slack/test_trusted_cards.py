"""A card approved automatically because its step earned trust, end to end through the real ASGI
app: it says so, and its Undo puts Approve / Edit / Skip back until the send worker claims it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from bot.core.models import Event, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import TRUSTED_APPROVER
from bot.planning import posting
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import message_of, state_of
from tests.support.slack_requests import wait_for


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
    wait_for(lambda: '"skip"' in json.dumps(message_of(posted, slack_api, 1)["blocks"]))
    with posted.sessions() as session:
        event = session.scalars(
            select(Event).where(Event.kind == "reminder.approval_withdrawn")
        ).one()
    assert (event.actor, event.payload) == ("U0APPROVER", {"approved_by": TRUSTED_APPROVER})
