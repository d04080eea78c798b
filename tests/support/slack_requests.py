"""Requests shaped like Slack's own, correctly signed, sent to the real ASGI app over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.fake_http import local_client

SIGNING_SECRET = "test-signing-secret"
TEAM = "T0TEST"
_EVENT_NUMBERS = itertools.count(1)


# Bounds for waiting on a condition, never a duration to sleep: a passing test stops waiting as
# soon as the condition holds, so only a failing one waits a bound out. They are generous so that
# a loaded 2-core machine (xdist, other test runs) is never mistaken for a bug.
PATIENCE = 60.0  # work in this process: threads, the work after Slack's ack (normally ms)
PROCESS_PATIENCE = 300.0  # `arbot` processes: start-up, imports, real work (normally seconds)


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackRequests:
    def __init__(
        self,
        base_url: str,
        secret: str = SIGNING_SECRET,
        team: str = TEAM,
        response_urls: Callable[[str, str], str] | None = None,
    ) -> None:
        self.team = team  # the workspace every request says it comes from
        # Given, each click carries a response_url made by response_urls(channel, message_ts)
        # (FakeSlack.response_url); else one on a host that never answers, which arbot leaves.
        self.response_urls = response_urls
        self.url = base_url.rstrip("/") + "/slack/events"
        self.secret = secret
        self.client = local_client(timeout=PATIENCE)  # the app answers in-process

    def close(self) -> None:
        self.client.close()

    def send(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = int(time.time()) if timestamp is None else timestamp
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or sign(body, ts, self.secret),
            **(headers or {}),
        }
        return self.client.post(self.url, content=body.encode(), headers=all_headers)

    def interactive(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.send(body, "application/x-www-form-urlencoded", **kwargs)

    def click(
        self,
        action_id: str,
        value: str,
        user: str = "U0APPROVER",
        channel: str = "C0FINANCE",
        message_ts: str = "1700000000.000100",
        trigger_id: str = "trigger-1",
        **kwargs: Any,
    ) -> httpx.Response:
        payload = self.click_payload(action_id, value, user, channel, message_ts, trigger_id)
        return self.interactive(payload, **kwargs)

    def signed_form(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """An interactive payload's body and signed headers, for clients of one's own."""
        body = urlencode({"payload": json.dumps(payload)})
        ts = int(time.time())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(body, ts, self.secret),
        }
        return body.encode(), headers

    def click_payload(
        self,
        action_id: str,
        value: str,
        user: str = "U0APPROVER",
        channel: str = "C0FINANCE",
        message_ts: str = "1700000000.000100",
        trigger_id: str = "trigger-1",
    ) -> dict[str, Any]:
        return {
            "type": "block_actions",
            "team": {"id": self.team, "domain": "test"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team},
            "api_app_id": "A0ARBOT",
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "trigger_id": trigger_id,
            "channel": {"id": channel, "name": "finance"},
            "message": {"ts": message_ts, "text": "plan"},
            "response_url": self.response_urls(channel, message_ts)
            if self.response_urls is not None
            else f"https://hooks.slack.invalid/actions/{self.team}/1/abc",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": f"block-{value}",
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                    "text": {"type": "plain_text", "text": action_id},
                }
            ],
        }

    def submit(
        self,
        callback_id: str,
        private_metadata: str,
        values: dict[str, dict[str, Any]],
        user: str = "U0APPROVER",
        **kwargs: Any,
    ) -> httpx.Response:
        payload = {
            "type": "view_submission",
            "team": {"id": self.team, "domain": "test"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team},
            "api_app_id": "A0ARBOT",
            "trigger_id": "trigger-submit",
            "view": {
                "id": "V0EDIT",
                "team_id": self.team,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "hash": "1",
                "state": {"values": values},
            },
        }
        return self.interactive(payload, **kwargs)

    def command(
        self,
        text: str,
        user: str = "U0APPROVER",
        channel: str = "C0FINANCE",
        *,
        response_url: str | None = None,  # e.g. the fake Slack's, to see what is posted there
        **kwargs: Any,
    ) -> httpx.Response:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": self.team,
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "finance",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/ar",
                "text": text,
                "api_app_id": "A0ARBOT",
                "trigger_id": "trigger-cmd",
                "response_url": response_url
                or f"https://hooks.slack.invalid/commands/{self.team}/1/abc",
            }
        )
        return self.send(body, "application/x-www-form-urlencoded", **kwargs)

    def event(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.team,
                "api_app_id": "A0ARBOT",
                "type": "event_callback",
                "event_id": f"Ev{next(_EVENT_NUMBERS):08d}",  # unique, however quick the test
                "event_time": int(time.time()),
                "event": event,
            }
        )
        return self.send(body, "application/json", **kwargs)


def wait_for(
    condition: Callable[[], Any], timeout: float = PATIENCE, interval: float = 0.01
) -> Any:
    """Poll until `condition()` is truthy (the work after Slack's ack runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
