"""A reminder's buttons (Approve, Edit, Skip), the plan header's Approve all <tier>, and the Edit
and Skip forms. A click is acknowledged first; the change runs after it, and then the card is
redrawn, or the clicker is told why nothing changed."""

from __future__ import annotations

from datetime import date
from functools import partial

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.planning import posting
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from handlers.slack.kit import Body, ListenerKit, clicked, clicker, on_click, typed
from integrations.slack_blocks import edit_modal, skip_modal
from integrations.slack_ids import APPROVE_ALL_ANY, Action, Field, Form

EDIT_LIMITS = {"email": 3000, "sms": 320}  # what Slack's multi-line input holds
ONLY_APPROVERS = "Only approvers can act on reminders. Ask someone in finance."
EDITED = {"subject": Field.SUBJECT, "body": Field.BODY}  # the linter's fields, in the form


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.APPROVE)(partial(on_click, kit, approve))
    app.action(APPROVE_ALL_ANY)(partial(on_click, kit, approve_all))
    app.action(Action.EDIT)(partial(on_edit, kit))
    app.action(Action.SKIP)(partial(on_skip, kit))
    app.view(Form.EDIT_REMINDER)(partial(on_edit_submit, kit))
    app.view(Form.SKIP_REMINDER)(partial(on_skip_submit, kit))


def redraw(kit: ListenerKit, reminder_ids: list[int]) -> None:
    """Redraw these reminders' cards (and the plan's header) as they are now."""
    with kit.runtime.sessions() as session:
        posting.refresh(session, kit.slack, reminder_ids, kit.runtime.settings.timezone)


def stale_rules(kit: ListenerKit) -> StaleRules:
    """What makes a reminder stale at approval: the same rules as at the send claim."""
    return StaleRules.from_settings(kit.runtime.settings)


def already(decision: approvals.Decision) -> str:
    who = f" by <@{decision.by}>" if decision.by and decision.by != "playbook" else ""
    if decision.by == "playbook":
        who = " by the playbook"
    at = f" at {decision.at.strftime('%H:%M UTC')}" if decision.at else ""
    return f"Nothing changed: this reminder was already {decision.state}{who}{at}."


def approve(kit: ListenerKit, body: Body) -> None:
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    try:
        with runtime.writing() as session:
            decision = approvals.approve(
                session, reminder_id, user, runtime.clock.now(), rules=stale_rules(kit)
            )
    except UserError as exc:
        kit.tell(channel, user, str(exc))
        return
    if decision.changed:
        redraw(kit, [reminder_id])
    else:
        kit.tell(channel, user, already(decision))


def approve_all(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    day_text, tier = body["actions"][0]["value"].split("|")
    runtime = kit.runtime
    with runtime.writing() as session:
        done = approvals.approve_all(
            session,
            date.fromisoformat(day_text),
            tier,
            user,
            runtime.clock.now(),
            rules=stale_rules(kit),
        )
    if done.changed():  # the approved, and the stale ones cancelled instead
        redraw(kit, done.changed())
    else:
        kit.tell(channel, user, f"Nothing changed: no {tier} reminder is waiting for approval.")


def on_edit(kit: ListenerKit, ack: Ack, body: Body) -> None:
    """Opens the form at once (its trigger lasts three seconds), not after the ack."""
    ack()
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id, examples=True)
    if draft is None or draft.state != "planned":
        state = draft.state if draft else "gone"
        kit.tell(channel, user, f"This reminder can no longer be edited: it is {state}.")
        return
    limit = EDIT_LIMITS.get(draft.channel or "email", 3000)
    if len(draft.body) > limit:  # never cut a customer's message silently
        kit.tell(
            channel,
            user,
            f"This message is {len(draft.body)} characters, "
            f"more than Slack's form can hold ({limit}). Approve or skip it as it is.",
        )
        return
    view = edit_modal(
        draft.reminder_id,
        draft.channel,
        draft.subject if draft.channel == "email" else None,
        draft.body,
        draft.step_key,
        draft.customer_name,
        list(draft.examples),
    )
    view["private_metadata"] = f"{reminder_id}|{channel or ''}"
    kit.open_view(body, view, channel, user)


def on_skip(kit: ListenerKit, ack: Ack, body: Body) -> None:
    """Opens the form at once (its trigger lasts three seconds), not after the ack."""
    ack()
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id)
    if draft is None:
        return
    view = skip_modal(reminder_id, draft.customer_name)
    view["private_metadata"] = f"{reminder_id}|{channel or ''}"
    kit.open_view(body, view, channel, user)


def on_edit_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """What the linter refuses is shown in the form, and nothing is saved; the rest is acked,
    then saved as an approval."""
    user = body["user"]["id"]
    reminder_id_text, _, channel = view["private_metadata"].partition("|")
    values = view["state"]["values"]
    subject = typed(values, Field.SUBJECT)
    text = typed(values, Field.BODY) or ""
    reminder_id = int(reminder_id_text)
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id)
    problems = approvals.edit_problems(draft.channel if draft else None, subject, text)
    if problems:
        ack(
            response_action="errors",
            errors={EDITED[field]: what for field, what in problems.items()},
        )
        return
    ack()
    kit.later(save_edit, user, channel or None, user, reminder_id, subject, text, channel)


def save_edit(
    kit: ListenerKit, user: str, reminder_id: int, subject: str | None, text: str, channel: str
) -> None:
    if not kit.allows(user):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision, _ = approvals.edit(session, reminder_id, user, subject, text, runtime.clock.now())
    if decision.changed:
        redraw(kit, [reminder_id])
    else:
        kit.tell(channel or None, user, already(decision))


def on_skip_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    ack()
    channel = view["private_metadata"].partition("|")[2] or None
    kit.later(save_skip, body["user"]["id"], channel, body, view)


def save_skip(kit: ListenerKit, body: Body, view: Body) -> None:
    user = body["user"]["id"]
    if not kit.allows(user):
        return
    reminder_id_text, _, channel = view["private_metadata"].partition("|")
    reason = typed(view["state"]["values"], Field.REASON) or ""
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = approvals.skip(session, int(reminder_id_text), user, reason, runtime.clock.now())
    if decision.changed:
        redraw(kit, [int(reminder_id_text)])
    else:
        kit.tell(channel or None, user, already(decision))
