"""The Bolt app around the listeners: who may approve, a failure after the ack told to the person
who clicked, and a click from another workspace refused."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.core.runtime import Runtime
from integrations.slack_chat import web_client
from tests.handlers.posted_plan import state_of
from tests.support.slack_requests import wait_for


def test_with_no_approver_list_every_member_of_the_finance_channel_may_approve(
    posted: Runtime, slack_api: Any
) -> None:
    from handlers.slack.app import Approvers

    posted.settings.approvers = []
    approvers = Approvers(posted, web_client("xoxb-test", slack_api.url))
    assert approvers.allows("U0MEMBER")
    assert not approvers.allows("U0OUTSIDER")


def test_a_failure_after_the_ack_is_told_to_the_person_who_clicked(
    posted: Runtime, served: Any, slack_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.reminders import approvals

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(approvals, "approve", broken)
    served.click("approve", "1")
    ephemeral = wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "That may not have gone through (RuntimeError)" in ephemeral[0]["text"]
    assert state_of(posted, 1) == "planned"


def test_a_click_from_another_workspace_changes_nothing(
    posted: Runtime, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    payload = served.click_payload("approve", "1")
    payload["team"] = {"id": "T0OTHER", "domain": "other"}
    payload["user"]["team_id"] = "T0OTHER"
    with caplog.at_level(logging.WARNING, logger="handlers"):
        served.interactive(payload)  # acknowledged at once; Bolt sees it after the ack
        # Wait for the refusal itself, not for a while: Bolt's middleware turns the click away
        # before any listener, so once it is logged the click has had all the effect it will.
        wait_for(lambda: "refused a request from workspace T0OTHER" in caplog.text)
    assert state_of(posted, 1) == "planned"
