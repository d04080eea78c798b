"""A reminder's buttons (Approve, Edit, Skip), the plan header's Approve all <tier>, and the Edit
and Skip forms. A click is acknowledged first; the change runs after it, and then the card is
redrawn, or the clicker is told why nothing changed."""

from __future__ import annotations

from datetime import date
from functools import partial

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.core.vocabulary import TIERS
from bot.planning import posting
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from handlers.slack.kit import ListenerKit, on_click, on_form_click
from handlers.slack.payload import (
    Body,
    OddPayload,
    action_value,
    clicked,
    clicker,
    submission,
    typed,
)
from integrations.base.slack import escape
from integrations.slack_blocks import edit_modal, skip_modal
from integrations.slack_ids import APPROVE_ALL_ANY, Action, Field, Form

ONLY_APPROVERS = "Only approvers can act on reminders. Ask someone in finance."
EDITED = {"subject": Field.SUBJECT, "body": Field.BODY}  # the linter's fields, in the form


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.APPROVE)(partial(on_click, kit, approve))
    app.action(APPROVE_ALL_ANY)(partial(on_click, kit, approve_all))
    app.action(Action.EDIT)(partial(on_form_click, kit, open_edit))
    app.action(Action.SKIP)(partial(on_form_click, kit, open_skip))
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


def plan_and_tier(value: str) -> tuple[date, str]:
    """An Approve all button's value: `<plan day>|<tier>`."""
    day_text, _, tier = value.partition("|")
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise OddPayload("actions[0].value does not name a plan's day") from None
    if tier not in TIERS:
        raise OddPayload(f"actions[0].value names no tier ({', '.join(TIERS)})")
    return day, tier


def approve_all(kit: ListenerKit, body: Body) -> None:
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    day, tier = plan_and_tier(action_value(body))
    runtime = kit.runtime
    with runtime.writing() as session:
        done = approvals.approve_all(
            session,
            day,
            tier,
            user,
            runtime.clock.now(),
            rules=stale_rules(kit),
        )
    if done.changed():  # the approved, and the stale ones cancelled instead
        redraw(kit, done.changed())
    else:
        kit.tell(
            channel, user, f"Nothing changed: no {escape(tier)} reminder is waiting for approval."
        )


def open_edit(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    """The Edit form, prefilled, with how the team wrote this step last time."""
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id, examples=True)
    if draft is None or draft.state != "planned":
        state = draft.state if draft else "gone"
        kit.tell(channel, user, f"This reminder can no longer be edited: it is {state}.")
        return
    limit = approvals.body_limit(draft.channel)
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
    kit.open_view(trigger_id, view, channel, user)


def open_skip(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    """The Skip form, which asks why."""
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id)
    if draft is None:
        return
    view = skip_modal(reminder_id, draft.customer_name)
    view["private_metadata"] = f"{reminder_id}|{channel or ''}"
    kit.open_view(trigger_id, view, channel, user)


def on_edit_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """What the linter refuses, and a field longer than the form holds, is shown in the form, and
    nothing is saved; the rest is acked, then saved as an approval."""
    user, _ = clicker(body)
    form = submission(view, Field.BODY)
    subject = typed(form.values, Field.SUBJECT)
    text = typed(form.values, Field.BODY) or ""
    reminder_id, channel = form.about, form.channel
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id)
    if draft is None:
        ack(response_action="errors", errors={Field.BODY: "This reminder no longer exists."})
        return
    problems = approvals.edit_problems(draft.channel, subject, text)
    if problems:
        ack(
            response_action="errors",
            errors={EDITED[field]: what for field, what in problems.items()},
        )
        return
    ack()
    kit.later(save_edit, user, channel, user, reminder_id, subject, text, channel)


def save_edit(
    kit: ListenerKit,
    user: str,
    reminder_id: int,
    subject: str | None,
    text: str,
    channel: str | None,
) -> None:
    if not kit.allows(user):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session, reminder_id, user, subject, text, runtime.clock.now()
        )
    if problems:  # the form checked the same a moment ago: only a changed reminder gets here
        kit.tell(channel, user, "Nothing saved: " + "; ".join(problems.values()))
        return
    if decision.changed:
        redraw(kit, [reminder_id])
    else:
        kit.tell(channel, user, already(decision))


def on_skip_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    user, _ = clicker(body)
    form = submission(view, Field.REASON)
    reason = typed(form.values, Field.REASON) or ""
    ack()
    kit.later(save_skip, user, form.channel, user, form.about, reason, form.channel)


def save_skip(
    kit: ListenerKit, user: str, reminder_id: int, reason: str, channel: str | None
) -> None:
    if not kit.allows(user):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = approvals.skip(session, reminder_id, user, reason, runtime.clock.now())
    if decision.changed:
        redraw(kit, [reminder_id])
    else:
        kit.tell(channel, user, already(decision))
