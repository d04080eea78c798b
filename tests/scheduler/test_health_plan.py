"""/healthz while part of today's plan is not in Slack: degraded for the token holder (with what
is missing and why), still ok to a load balancer, and ok again once the sweep has posted it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from integrations.slack_chat import SlackChat, web_client
from scheduler.business_days import business_days
from scheduler.daily import morning_plan
from scheduler.health import health

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_health_is_degraded_while_slack_lacks_part_of_the_plan_and_ok_once_posted(
    ledger: None, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, served: Any
) -> None:
    slack_api.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(UserError):
        morning_plan(slack_runtime, business_days(slack_runtime.settings), "a:1")

    ok, doc = health(slack_runtime, None)
    assert ok and doc["status"] == "degraded"
    missing = doc["plan_in_slack"]
    assert missing["day"] == "2026-03-16" and missing["missing"] == missing["of"] > 0
    assert missing["refused"] == 1 and missing["last_error"] == "not_in_channel"
    url = served.url.replace("/slack/events", "/healthz")
    anyone = httpx.get(url)
    assert anyone.status_code == 200 and anyone.json() == {"status": "ok"}
    slack_runtime.settings.health_token = SecretStr("health-token-1")
    operator = httpx.get(url, headers={"Authorization": "Bearer health-token-1"})
    assert operator.status_code == 200 and operator.json()["status"] == "degraded"

    clock.advance(timedelta(minutes=2))
    sweep(slack_runtime, SlackChat(web_client("xoxb-test", slack_api.url)))
    ok, doc = health(slack_runtime, None)
    assert ok and doc["status"] == "ok" and doc["plan_in_slack"] is None
