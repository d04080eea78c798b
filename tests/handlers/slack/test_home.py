"""App Home: the queue, the open escalations and aging."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.core.runtime import Runtime
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_the_app_home_shows_the_queue_escalations_and_aging(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    served.event(
        {"type": "app_home_opened", "user": "U0APPROVER", "channel": "D0HOME", "tab": "home"}
    )
    published = wait_for(lambda: slack_api.calls("views.publish"))
    view = json.dumps(published[0]["view"])
    assert "Today's queue" in view and "Open escalations" in view and "Aging" in view
