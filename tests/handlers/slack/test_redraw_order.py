"""A card's redraw never goes back in time: a redraw whose chat.update Slack holds up cannot land
after a newer one, redraws asked for while one is in flight become one more chat.update with the
latest state, and a worker that died while drawing does not keep the message from being drawn.
Driven through the real flows against the recording Slack fake, which holds chosen calls."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.core.models import MessageVersion, Reminder
from bot.core.runtime import Runtime
from bot.planning import posting
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import message_of
from tests.support.slack_requests import PATIENCE


class HeldUpdate:
    """The fake Web API holds the first chat.update until `release`, as a slow network would."""

    def __init__(self, slack_api: Any) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.updates = 0
        slack_api.on_call = self.on_call

    def on_call(self, what: str) -> None:
        if what != "Slack chat.update":
            return
        self.updates += 1
        if self.updates == 1:
            self.arrived.set()
            assert self.released.wait(PATIENCE)

    def release(self) -> None:
        self.released.set()


def _redraw(runtime: Runtime, slack_api: Any, reminder_id: int) -> None:
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with runtime.sessions() as session:
        posting.refresh(session, chat, [reminder_id], runtime.settings.timezone)


def _set(runtime: Runtime, reminder_id: int, **values: Any) -> None:
    with runtime.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == reminder_id).values(**values))


def _card_text(runtime: Runtime, slack_api: Any, reminder_id: int) -> str:
    return json.dumps(message_of(runtime, slack_api, reminder_id)["blocks"])


def _message_key(runtime: Runtime, reminder_id: int) -> tuple[str | None, str | None]:
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        return reminder.slack_channel, reminder.slack_ts


def test_a_stale_redraw_held_up_by_slack_never_lands_after_a_newer_one(
    posted: Runtime, slack_api: Any
) -> None:
    held = HeldUpdate(slack_api)
    _set(posted, 1, state="approved", approved_by="U0APPROVER", approved_at=posted.clock.now())
    stale = threading.Thread(target=_redraw, args=(posted, slack_api, 1))
    stale.start()  # draws "approved"; Slack holds its chat.update
    assert held.arrived.wait(PATIENCE)

    _set(posted, 1, state="cancelled", cancel_reason="paid")
    _redraw(posted, slack_api, 1)  # newer: must not be overtaken by the held one
    held.release()
    stale.join(PATIENCE)
    assert not stale.is_alive()

    text = _card_text(posted, slack_api, 1)
    assert "Cancelled" in text and "paid" in text
    assert "Approved by" not in text


def test_redraws_asked_for_while_one_is_in_flight_become_one_update_with_the_latest_state(
    posted: Runtime, slack_api: Any
) -> None:
    held = HeldUpdate(slack_api)
    card_message = _message_key(posted, 1)
    drawing = threading.Thread(target=_redraw, args=(posted, slack_api, 1))
    drawing.start()
    assert held.arrived.wait(PATIENCE)
    for step in ("approved", "planned", "approved", "planned", "skipped"):
        _set(posted, 1, state=step, approved_by="U0APPROVER" if step == "approved" else None)
        _redraw(posted, slack_api, 1)
    held.release()
    drawing.join(PATIENCE)
    assert not drawing.is_alive()

    card_updates = [
        c for c in slack_api.calls("chat.update") if (c["channel"], c["ts"]) == card_message
    ]
    assert len(card_updates) == 2  # the held one, then one with the latest state
    assert "Skipped" in _card_text(posted, slack_api, 1)


def test_a_message_whose_drawer_died_is_drawn_by_the_sweep_and_by_the_next_redraw(
    posted: Runtime, slack_api: Any
) -> None:
    _redraw(posted, slack_api, 1)  # the message has its version row
    long_ago = datetime.now(UTC) - timedelta(hours=1)  # leases run in real time
    with posted.writing() as session:  # a worker took the lease, asked for more, and died
        session.execute(
            update(MessageVersion).values(wanted=MessageVersion.drawn + 1, drawing_since=long_ago)
        )
    _set(posted, 1, state="cancelled", cancel_reason="paid")
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    assert posting.retry_redraws(posted, chat) >= 1
    assert "Cancelled" in _card_text(posted, slack_api, 1)

    with posted.writing() as session:  # died again, just as the next redraw comes
        session.execute(update(MessageVersion).values(drawing_since=long_ago))
    _set(posted, 1, state="skipped")
    _redraw(posted, slack_api, 1)
    assert "Skipped" in _card_text(posted, slack_api, 1)
