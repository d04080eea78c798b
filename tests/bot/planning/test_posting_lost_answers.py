"""A post whose answer Slack lost on the way back (the connection dropped after Slack had
posted) is not sent a second time by the client: Slack would show it twice. Driven against the
recording Slack fake, which can do a call and close the connection without answering."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.errors import SlackFailed
from integrations.slack_chat import SlackChat, web_client


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def test_a_post_whose_answer_was_lost_is_not_sent_again_by_the_client(slack_api: Any) -> None:
    slack_api.lose_answer_next("chat.postMessage")
    with pytest.raises(SlackFailed) as failed:
        _chat(slack_api).post_text("C0FINANCE", "The plan reached this channel late")
    assert failed.value.error.startswith("unreachable")
    assert len(slack_api.calls("chat.postMessage")) == 1
    assert len(slack_api.messages) == 1  # Slack has it once


def test_an_update_whose_answer_was_lost_is_sent_again(slack_api: Any) -> None:
    chat = _chat(slack_api)
    posted = chat.client.chat_postMessage(channel="C0FINANCE", text="before")
    slack_api.lose_answer_next("chat.update")
    chat.client.chat_update(channel="C0FINANCE", ts=posted["ts"], text="after")  # no raise
    assert len(slack_api.calls("chat.update")) == 2
