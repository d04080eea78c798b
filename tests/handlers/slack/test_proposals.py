"""A proposed playbook approved from its Slack card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import Runtime
from integrations.slack_chat import SlackChat, web_client
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_a_proposed_playbook_is_approved_from_its_slack_card(
    served: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    import shutil

    from bot.core.models import PlaybookVersion
    from bot.learning import proposals, versions
    from playbooks.loader import BUNDLED

    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    softer = tmp_path / "softer.yml"
    softer.write_text(
        BUNDLED.read_text().replace(
            "offset_days: 21, channels: [email]", "offset_days: 28, channels: [email]"
        )
    )
    with slack_runtime.writing() as session:
        version = versions.propose(
            session, softer, "system", "strategic check-in a week later", slack_runtime.clock.now()
        )
        view = proposals.view_of(session, version.id)
        version_id = version.id
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    channel, ts = chat.post_proposal("C0FINANCE", view)
    card = slack_api.messages[(channel, ts)]
    assert "proposal_approve" in json.dumps(card["blocks"])

    served.click(
        "proposal_approve", str(version_id), user="U0MEMBER", message_ts=ts
    )  # not an approver
    served.click("proposal_approve", str(version_id), message_ts=ts)

    def status() -> str:
        with slack_runtime.sessions() as session:
            return session.get(PlaybookVersion, version_id).status  # type: ignore[union-attr]

    wait_for(lambda: status() == "active")
    updated = wait_for(
        lambda: "Approved" in json.dumps(slack_api.messages[(channel, ts)]["blocks"])
    )
    assert updated
