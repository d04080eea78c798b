"""A proposed playbook revision's buttons: Approve (it becomes the active playbook) or Reject.
Nothing about the playbook changes without one of these clicks by an approver."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.core.errors import UserError
from bot.learning import proposals
from handlers.slack.kit import Body, ListenerKit, clicker, on_click
from integrations.slack_ids import Action

ONLY_APPROVERS = "Only approvers can change the playbook."


def register(app: App, kit: ListenerKit) -> None:
    for button in (Action.PROPOSAL_APPROVE, Action.PROPOSAL_REJECT):
        app.action(button)(partial(on_click, kit, decide))


def decide(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    action = body["actions"][0]
    version_id = int(action["value"])
    approving = action["action_id"] == Action.PROPOSAL_APPROVE
    runtime = kit.runtime
    try:
        with runtime.writing() as session:
            step = proposals.approve if approving else proposals.reject
            decision = step(session, version_id, user, runtime.clock.now())
            view = proposals.view_of(session, version_id)
    except UserError as exc:
        kit.tell(channel, user, str(exc))
        return
    message_ts = (body.get("message") or {}).get("ts")
    if channel and message_ts:
        kit.slack.update_proposal(channel, message_ts, view)
    if not decision.changed or (approving and decision.status == "retired"):
        kit.tell(channel, user, decision.message)
