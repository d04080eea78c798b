"""A guardrail proposed after recurring errors: Approve (it is applied), Dismiss (a form asks why;
it is not proposed again for 8 weeks) and, once approved, Release (its hold ends). Only approvers
decide; a second click is told who decided first."""

from __future__ import annotations

from functools import partial

from slack_bolt import Ack, App

from bot.escalations import posting as escalation_posting
from bot.learning import guardrails
from handlers.slack.kit import ListenerKit, on_click, on_form_click
from handlers.slack.payload import (
    Body,
    clicker,
    first_action,
    message_ts,
    record_id,
    submission,
    typed,
)
from handlers.slack.reminders import redraw
from integrations.slack_guardrail import dismiss_modal
from integrations.slack_ids import Action, Field, Form

ONLY_APPROVERS = "Only approvers can decide on guardrails."


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.GUARDRAIL_APPROVE)(partial(on_click, kit, approve))
    app.action(Action.GUARDRAIL_RELEASE)(partial(on_click, kit, release))
    app.action(Action.GUARDRAIL_DISMISS)(partial(on_form_click, kit, open_dismiss))
    app.view(Form.GUARDRAIL_DISMISS)(partial(on_dismiss_submit, kit))


def _clicked(kit: ListenerKit, body: Body) -> tuple[str, str | None, int] | None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return None
    return user, channel, record_id(first_action(body).get("value"), "actions[0].value")


def approve(kit: ListenerKit, body: Body) -> None:
    clicked = _clicked(kit, body)
    if clicked is None:
        return
    user, channel, proposal_id = clicked
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = guardrails.approve(
            session,
            proposal_id,
            user,
            runtime.clock.now(),
            dict(runtime.settings.escalation_routes),
        )
    _answer(kit, proposal_id, channel, message_ts(body), user, decision)
    if decision.cancelled:  # the reminders a hold cancelled say so on their cards
        redraw(kit, list(decision.cancelled))
    if decision.changed:  # a person asked for a contact: its thread now (else the sweep posts it)
        escalation_posting.post_new(runtime, kit.slack)


def release(kit: ListenerKit, body: Body) -> None:
    clicked = _clicked(kit, body)
    if clicked is None:
        return
    user, channel, proposal_id = clicked
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = guardrails.release(session, proposal_id, user, runtime.clock.now())
    _answer(kit, proposal_id, channel, message_ts(body), user, decision)


def open_dismiss(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    clicked = _clicked(kit, body)
    if clicked is None:
        return
    user, channel, proposal_id = clicked
    with kit.runtime.sessions() as session:
        view = guardrails.view_of(session, proposal_id)
    if view.status != "proposed":
        who = f" by <@{view.decided_by}>" if view.decided_by else ""
        kit.tell(channel, user, f"This guardrail was already {view.status}{who}.")
        return
    form = dismiss_modal(proposal_id, view.customer_name)
    form["private_metadata"] = f"{proposal_id}|{channel or ''}"
    kit.open_view(trigger_id, form, channel, user)


def on_dismiss_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    user, _ = clicker(body)
    form = submission(view, Field.REASON)
    why = typed(form.values, Field.REASON) or ""
    ack()
    kit.later(save_dismissal, user, form.channel, user, form.about, why, form.channel)


def save_dismissal(
    kit: ListenerKit, user: str, proposal_id: int, why: str, channel: str | None
) -> None:
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = guardrails.dismiss(session, proposal_id, user, why, runtime.clock.now())
    _answer(kit, proposal_id, channel, None, user, decision)


def _answer(
    kit: ListenerKit,
    proposal_id: int,
    channel: str | None,
    ts: str | None,
    user: str,
    decision: guardrails.GuardrailDecision,
) -> None:
    """Redraw the card where it was posted (or where it was clicked), and tell the clicker
    when nothing changed."""
    with kit.runtime.sessions() as session:
        view = guardrails.view_of(session, proposal_id)
        where = guardrails.where_posted(session, proposal_id)
    if where is None and channel and ts:
        where = (channel, ts)
    if where is not None:
        kit.slack.update_guardrail(where[0], where[1], view)
    if not decision.changed:
        kit.tell(channel, user, decision.message)
