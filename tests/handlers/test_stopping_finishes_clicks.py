"""A server that stops finishes what the clicks it already answered started: the approval's redraw
reaches Slack before the app is gone (the process ends, or in tests, the fake Slack it talks to is
torn down), instead of running on unseen or being cut off."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from bot.core.runtime import Runtime
from tests.handlers.posted_plan import approve_value, message_of, state_of
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE, SlackRequests, wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_a_stopping_server_finishes_the_redraw_a_click_started(
    posted: Runtime, slack_api: Any
) -> None:
    redraw_arrived = threading.Event()
    stopping = threading.Event()

    def hold_the_redraw_until_the_server_stops(what: str) -> None:
        if what == "Slack chat.update" and not redraw_arrived.is_set():
            redraw_arrived.set()
            stopping.wait(PATIENCE)  # answered only once the server has been told to stop

    slack_api.on_call = hold_the_redraw_until_the_server_stops
    with serve(posted) as url:
        requests = SlackRequests(url)
        requests.click("approve", approve_value(posted, slack_api, 1))
        wait_for(lambda: state_of(posted, 1) == "approved")
        wait_for(redraw_arrived.is_set)
        requests.close()
        stopping.set()
    # The server has stopped: the card's redraw it had in hand was answered, and the header's
    # that follows it was drawn too.
    slack_api.on_call = None
    assert "Approved by <@U0APPROVER>" in json.dumps(message_of(posted, slack_api, 1)["blocks"])
    assert len(slack_api.calls("chat.update")) == 2  # the card's message, then the header
