"""A reminder that changes while the morning plan is being posted (a payment lands, the send
worker sends it, a reply pauses it) has its card drawn as it is now: the change's own redraw
found no message to draw (the card's ts was not stored yet), so the posting draws it once it has
the message. Driven through the real flows against the recording Slack fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.core.runtime import Runtime
from bot.planning import posting
from bot.reminders import state
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import TODAY, buttons_of, ledger, make_plan, message_of


def test_a_reminder_cancelled_while_its_card_is_posted_shows_cancelled(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    runtime = slack_runtime
    ledger(runtime, tmp_path)
    make_plan(runtime)
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    posts = 0

    def payment_meanwhile(what: str) -> None:
        nonlocal posts
        if what != "Slack chat.postMessage":
            return
        posts += 1
        if posts == 2:  # the header is posted, the cards' message is on its way
            with runtime.writing() as session:
                state.cancel(
                    session,
                    [1],
                    from_states=(state.PLANNED, state.APPROVED),
                    reason="paid",
                    now=runtime.clock.now(),
                )
            with runtime.sessions() as session:  # as the payment's flow redraws it
                posting.refresh(session, chat, [1], runtime.settings.timezone)

    slack_api.on_call = payment_meanwhile
    try:
        assert posting.post_plan(runtime, chat, "C0FINANCE", TODAY) == 3
    finally:
        slack_api.on_call = None

    assert posts == 2
    assert "approve" not in buttons_of(runtime, slack_api, 1)
    card = json.dumps(message_of(runtime, slack_api, 1)["blocks"])
    assert "Cancelled" in card and "paid" in card
    assert "approve" in buttons_of(runtime, slack_api, 2)  # the others as they were
