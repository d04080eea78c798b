"""Slack says the app was uninstalled from the main workspace (SLACK_BOT_TOKEN), or its bot token
revoked, through the real ASGI app with signed requests: answered 200 (not 404, which Slack
retries), recorded, no Slack call made with the dead token, today's plan waiting rather than lost,
and /healthz degraded saying to reinstall until a new token arrives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.core.models import Event
from bot.core.runtime import Runtime
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.errors import SlackFailed
from integrations.wiring import slack_for
from tests.handlers.posted_plan import TODAY, ledger
from tests.support.corpus import corpus_file
from tests.support.slack_requests import TEAM

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

REINSTALL = "Slack app uninstalled / token revoked: reinstall"


def _health(runtime: Runtime, served: Any) -> dict[str, Any]:
    runtime.settings.health_token = SecretStr("health-token-1")
    url = served.url.replace("/slack/events", "/healthz")
    answer = httpx.get(url, headers={"Authorization": "Bearer health-token-1"})
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _recorded(runtime: Runtime, kind: str) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Event).where(Event.kind == kind)) or 0
        )


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_uninstalled"},
        {"type": "tokens_revoked", "tokens": {"oauth": ["U0APPROVER"], "bot": ["U0ARBOT"]}},
    ],
)
def test_the_main_workspaces_uninstall_is_answered_200_recorded_and_shown_in_healthz(
    slack_runtime: Runtime, served: Any, event: dict[str, Any]
) -> None:
    assert _health(slack_runtime, served)["slack"] == "ok"

    assert served.event(event).status_code == 200
    assert served.event(event).status_code == 200  # Slack retrying: recorded once

    assert _recorded(slack_runtime, f"slack.{event['type']}") == 1
    document = _health(slack_runtime, served)
    assert document["status"] == "degraded"
    assert REINSTALL in document["slack"] and TEAM in document["slack"]


def test_only_users_tokens_revoked_leaves_the_bot_working(
    slack_runtime: Runtime, served: Any
) -> None:
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U0APPROVER"], "bot": []}}
    assert served.event(event).status_code == 200
    assert _recorded(slack_runtime, "slack.tokens_revoked") == 0
    assert _health(slack_runtime, served)["slack"] == "ok"


def test_slacks_own_app_uninstalled_event_is_recorded(slack_runtime: Runtime, served: Any) -> None:
    body = json.loads(corpus_file("slack", "bolt-event_app_uninstalled.json").read_text())
    body["team_id"] = TEAM  # sent to our main workspace's app
    body.pop("enterprise_id", None)
    assert served.send(json.dumps(body), "application/json").status_code == 200
    assert _recorded(slack_runtime, "slack.app_uninstalled") == 1


def test_after_an_uninstall_nothing_is_posted_and_the_plan_waits_for_the_new_token(
    slack_runtime: Runtime, served: Any, slack_api: Any, tmp_path: Path, caplog: Any
) -> None:
    ledger(slack_runtime, tmp_path)
    with slack_runtime.writing() as session:
        run_plan(
            session,
            PlanRules.from_settings(slack_runtime.settings),
            TODAY,
            slack_runtime.clock.now(),
            False,
        )
    assert served.event({"type": "app_uninstalled"}).status_code == 200
    before = len(slack_api.calls())

    slack = slack_for(slack_runtime.settings)
    assert slack is not None
    with pytest.raises(SlackFailed) as refused:
        slack.post_text("C0FINANCE", "hello")
    assert refused.value.error == "token_revoked"
    with pytest.raises(SlackFailed):
        posting.post_plan(slack_runtime, slack, "C0FINANCE", TODAY)
    assert len(slack_api.calls()) == before  # not one call with the dead token
    assert "Slack chat.postMessage not called" in caplog.text
    assert _health(slack_runtime, served)["plan_in_slack"]["missing"] > 0

    # The app is installed again: Slack gives a new token, and what waited goes out.
    slack_api.add_workspace(TEAM, "xoxb-reinstalled")
    slack_runtime.settings.slack_bot_token = SecretStr("xoxb-reinstalled")
    slack = slack_for(slack_runtime.settings)
    assert slack is not None
    assert posting.post_plan(slack_runtime, slack, "C0FINANCE", TODAY) > 0
    document = _health(slack_runtime, served)
    assert document["slack"] == "ok" and document["plan_in_slack"] is None
