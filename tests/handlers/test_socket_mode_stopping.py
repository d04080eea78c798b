"""`arbot serve` with Socket Mode, stopping: a click Socket Mode is still handing to Bolt when it
is closed is applied, and its work finished, before the process goes."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltRequest

from bot.core.runtime import Runtime
from handlers.app import create_app
from handlers.cli.serve import stop_taking_clicks
from handlers.slack import build_bolt
from integrations.slack_chat import web_client
from tests.handlers.posted_plan import approve_value, state_of
from tests.support.slack_requests import SlackRequests


def test_a_click_socket_mode_hands_over_while_it_closes_is_applied(
    posted: Runtime, slack_api: Any
) -> None:
    bolt = build_bolt(posted, web_client("xoxb-test", slack_api.url))
    served = create_app(posted, bolt)
    requests = SlackRequests("http://127.0.0.1:9")  # only for the click's payload
    click = requests.click_payload("approve", approve_value(posted, slack_api, 1))
    requests.close()
    answers: list[int] = []

    class ClosingSocketMode:
        """Slack's Socket Mode client at close: it waits for the message its threads are handing
        to Bolt (slack_sdk's SocketModeClient.close shuts its message workers down, waiting)."""

        def close(self) -> None:
            answers.append(bolt.dispatch(BoltRequest(body=click, mode="socket_mode")).status)

    stop_taking_clicks(ClosingSocketMode(), served)
    assert answers == [200]
    assert state_of(posted, 1) == "approved"
