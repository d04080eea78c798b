"""A click whose redraw Slack refuses: the decision is stored, the person who clicked is not told
it "may not have gone through", and the sweep draws the card again until Slack takes it (through
the real app with signed requests, against the fake Web API answering chat.update with 500s)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.models import SlackRetry
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import approve_value, message_of, state_of
from tests.support.slack_requests import wait_for

pytestmark = [
    pytest.mark.slow,  # the real app served over HTTP, end to end
    pytest.mark.usefixtures("slack_retries_at_once"),  # the client's retries of a 500, at once
]


def _owed(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count(SlackRetry.id))) or 0)


def test_a_redraw_slack_refused_after_approve_is_drawn_by_the_sweep_and_nobody_is_misled(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    slack_api.server_error_next("chat.update", times=6)  # the card and the header, retries too
    assert served.click("approve", approve_value(posted, slack_api, 1)).status_code == 200
    wait_for(lambda: state_of(posted, 1) == "approved" and _owed(posted) == 2)
    assert "Approved by" not in json.dumps(message_of(posted, slack_api, 1)["blocks"])

    report = sweep(posted, SlackChat(web_client("xoxb-test", slack_api.url)))
    assert report.redrawn == 2  # the card's message and the plan's header
    assert "Approved by <@U0APPROVER>" in json.dumps(message_of(posted, slack_api, 1)["blocks"])
    told = [c.get("text", "") for c in slack_api.calls("chat.postEphemeral")]
    assert not [text for text in told if "may not have gone through" in text]
