"""Bolt listeners for a proposed playbook revision: Approve (it becomes the active playbook) or
Reject. Nothing about the playbook changes without one of these clicks by an approver."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.learning import proposals
from handlers.listener_kit import ListenerKit


def register(app: App, kit: ListenerKit) -> None:
    runtime, slack, allows, later, tell = kit.runtime, kit.slack, kit.allows, kit.later, kit.tell

    @app.action(re.compile(r"^proposal_(approve|reject)$"))
    def on_proposal(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(decide, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def decide(body: dict[str, Any]) -> None:
        user, channel = body["user"]["id"], body.get("channel", {}).get("id")
        if not allows(user):
            tell(channel, user, "Only approvers can change the playbook.")
            return
        action = body["actions"][0]
        version_id = int(action["value"])
        approving = action["action_id"] == "proposal_approve"
        try:
            with runtime.writing() as session:
                step = proposals.approve if approving else proposals.reject
                decision = step(session, version_id, user, runtime.clock.now())
                view = proposals.view_of(session, version_id)
        except UserError as exc:
            tell(channel, user, str(exc))
            return
        message_ts = (body.get("message") or {}).get("ts")
        if channel and message_ts:
            slack.update_proposal(channel, message_ts, view)
        if not decision.changed or (approving and decision.status == "retired"):
            tell(channel, user, decision.message)
