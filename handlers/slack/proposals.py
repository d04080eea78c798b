"""A proposed playbook revision's buttons: Approve (it becomes the active playbook) or Reject.
Nothing about the playbook changes without one of these clicks by an approver."""

from __future__ import annotations

from functools import partial

from slack_bolt import App

from bot.core.errors import UserError
from bot.learning import proposals
from handlers.slack.kit import ListenerKit, on_click
from handlers.slack.payload import Body, clicker, first_action, message_ts, record_id
from integrations.slack_ids import Action

ONLY_APPROVERS = "Only approvers can change the playbook."


def register(app: App, kit: ListenerKit) -> None:
    for button in (Action.PROPOSAL_APPROVE, Action.PROPOSAL_REJECT):
        app.action(button)(partial(on_click, kit, decide))


def decide(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    action = first_action(body)
    version_id = record_id(action.get("value"), "actions[0].value")
    approving = action.get("action_id") == Action.PROPOSAL_APPROVE
    runtime = kit.runtime
    try:
        with runtime.writing() as session:
            step = proposals.approve if approving else proposals.reject
            decision = step(session, version_id, user, runtime.clock.now())
            view = proposals.view_of(session, version_id)
    except UserError as exc:
        kit.tell(channel, user, str(exc))
        return
    ts = message_ts(body)
    if channel and ts:
        kit.slack.update_proposal(channel, ts, view)
    if not decision.changed or (approving and decision.status == "retired"):
        kit.tell(channel, user, decision.message)
