"""The ASGI app: Slack's signature checked before anything runs (also for a button, answered
before Bolt sees it), and /healthz."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.core.runtime import Runtime
from tests.handlers.posted_plan import state_of
from tests.support.slack_requests import sign

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_a_forged_signature_gets_401_and_changes_nothing(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    response = served.click("approve", "1", signature="v0=" + "0" * 64)
    assert response.status_code == 401
    assert state_of(posted, 1) == "planned"


def test_a_request_older_than_five_minutes_is_refused(
    posted: Runtime, served: Any, slack_api: Any
) -> None:
    old = int(time.time()) - 301
    response = served.click("approve", "1", timestamp=old)
    assert response.status_code == 401
    assert state_of(posted, 1) == "planned"


def test_a_replayed_body_under_a_new_timestamp_fails_the_signature(
    posted: Runtime, served: Any
) -> None:
    body = "payload=" + json.dumps({"type": "block_actions"})
    old = int(time.time()) - 400
    signature = sign(body, old)  # captured long ago
    response = served.send(
        body, "application/x-www-form-urlencoded", timestamp=int(time.time()), signature=signature
    )
    assert response.status_code == 401


def test_healthz_answers_anyone_ok_and_its_token_holder_the_whole_document(
    posted: Runtime, served: Any
) -> None:
    url = served.url.replace("/slack/events", "/healthz")
    anyone = httpx.get(url)
    assert anyone.status_code == 200
    assert anyone.json() == {"status": "ok"}
    posted.settings.health_token = SecretStr("health-token-1")
    operator = httpx.get(url, headers={"Authorization": "Bearer health-token-1"})
    assert operator.status_code == 200
    assert operator.json()["database"] == "ok"
    wrong = httpx.get(url, headers={"Authorization": "Bearer health-token-2"})
    assert wrong.status_code == 401 and "ARBOT_HEALTH_TOKEN" in wrong.text
