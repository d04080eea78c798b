"""A reminder's buttons (Approve, Edit, Skip, and Undo once approved), the plan header's Approve all
<tier> (and the Undo its clicker is given), and the Edit and Skip forms. A click is acknowledged
first; the change runs after it, and then the card is redrawn, or the clicker is told why nothing
changed: who or what acted, at the business's local time. A form never opens for a reminder
already decided."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.core.vocabulary import AUTO_APPROVER, TRUSTED_APPROVER
from bot.learning import trust_notices
from bot.planning import plan_unit
from bot.planning.rules import sender_from
from bot.reminders import approvals
from bot.reminders.shown import NOT_SHOWN
from bot.reminders.stale import StaleRules
from handlers.slack.kit import ListenerKit, on_click, on_form_click
from handlers.slack.payload import (
    Body,
    OddPayload,
    action_value,
    clicked,
    clicker,
    response_url,
    submission,
    typed,
)
from integrations.base.slack import EDIT_SUBJECT_LIMIT, edit_body_limit, escape
from integrations.slack_approvals import undo_all_blocks
from integrations.slack_blocks import edit_modal, skip_modal
from integrations.slack_ids import (
    APPROVE_ALL_ANY,
    Action,
    Approving,
    Covered,
    Field,
    Form,
    approving,
    covered_by,
    undone_by,
)

ONLY_APPROVERS = "Only approvers can act on reminders. Ask someone in finance."
EDITED = {"subject": Field.SUBJECT, "body": Field.BODY}  # the linter's fields, in the form

log = logging.getLogger(__name__)


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.APPROVE)(partial(on_click, kit, approve))
    app.action(APPROVE_ALL_ANY)(partial(on_click, kit, approve_all))
    app.action(Action.UNDO)(partial(on_click, kit, undo))
    app.action(Action.UNDO_ALL)(partial(on_click, kit, undo_all))
    app.action(Action.EDIT)(partial(on_form_click, kit, open_edit))
    app.action(Action.SKIP)(partial(on_form_click, kit, open_skip))
    app.view(Form.EDIT_REMINDER)(partial(on_edit_submit, kit))
    app.view(Form.SKIP_REMINDER)(partial(on_skip_submit, kit))


def redraw(kit: ListenerKit, reminder_ids: list[int]) -> None:
    """Redraw these reminders' cards (and the plan's header) soon, from the state read then,
    together with whatever other clicks ask for meanwhile (handlers/slack/redraw_queue.py)."""
    kit.redraws.ask(kit, reminder_ids)


def stale_rules(kit: ListenerKit) -> StaleRules:
    """What makes a reminder stale at approval: the same rules as at the send claim."""
    return StaleRules.from_settings(kit.runtime.settings)


def undo_window(kit: ListenerKit) -> timedelta:
    """How long after a person's approval a reminder waits, so that Undo can take it back."""
    return timedelta(seconds=kit.runtime.settings.undo_seconds)


def local_time(kit: ListenerKit, at: datetime) -> str:
    """A moment as people read it on the cards: the business's time zone (ARBOT_TIMEZONE)."""
    return at.astimezone(ZoneInfo(kit.runtime.settings.timezone)).strftime("%H:%M %Z")


# Why arbot cancelled a reminder, as the sentence "this reminder was cancelled ..." ends: one for
# every reason the code cancels with (tests/handlers/slack/test_cancel_reasons.py finds them).
CANCELLED_BECAUSE = {
    "paid": "by a payment",
    "voided": "because the ledger voided every invoice it covers",
    "disputed": "because an invoice it covers is disputed",
    "promised": "because the customer promised to pay",
    "payment_plan": "because the invoice is on a payment plan",
    "plan_cancelled": "because its payment plan was cancelled",
    "superseded": "because an invoice's balance changed since it was written",
    "due_date_changed": "because an invoice's due date changed since it was written",
    "total_changed": "because an invoice's total changed since it was written",
    "paused": "because the customer is paused or never automated",
    "escalated": "because the account went to a person",
    "payment_in_review": "because a bank payment that may be the customer's waits for a person",
    "replied": "because the customer replied",
    "opted_out": "because the contact opted out or cannot be reached",
    "no_sms_consent": "because the contact gave no consent to texts at this phone number",
    "email_changed": "because the ledger gave the contact another email address",
    "phone_changed": "because the ledger gave the contact another phone number",
    "no_send_window": "because the contact's sending hours leave no time to send",
    "no_invoice_copy": "because a copy of an invoice could not be attached",
    "message_too_large": "because the email with its invoice copies is too large",
}


SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")  # a person's id: mentioned, anything else named


def who_acted(kit: ListenerKit, state: str, by: str | None, reason: str | None) -> str:
    """`approved by <@U…>`, `cancelled by a payment`, `skipped by the playbook`: a state and who
    or what put it there."""
    if state == "cancelled" and (by is None or by == "system"):
        because = CANCELLED_BECAUSE.get(reason or "", f"({escape(reason)})" if reason else "")
        return f"cancelled {because}".rstrip()
    if by == AUTO_APPROVER:
        return f"{state} by the playbook"
    if by and by != "system" and state != "planned":
        verb = "approved" if state in ("sending", "sent", "failed", "unknown") else state
        who = (
            "arbot, for a step that earned trust"
            if by == TRUSTED_APPROVER
            else f"<@{escape(by)}>"
            if SLACK_USER.fullmatch(by)
            else escape(by)
        )
        done = f"{verb} by {who}"
        return done if verb == state else f"{state} (approved by {who})"
    return state


def already(kit: ListenerKit, decision: approvals.Decision, what: str = "approved") -> str:
    """Why a click changed nothing: what the reminder already is, who or what did it, when; or,
    when the click itself found it stale and cancelled it, that it was not `what` but cancelled
    now, and why."""
    if decision.cancelled_now:
        done = who_acted(kit, "cancelled", None, decision.reason)
        return f"Not {what}: arbot cancelled this reminder just now instead; it is {done}."
    at = f" at {local_time(kit, decision.at)}" if decision.at else ""
    done = who_acted(kit, decision.state, decision.by, decision.reason)
    return f"Nothing changed: this reminder was already {done}{at}."


def decided(kit: ListenerKit, draft: approvals.Draft | None, what: str) -> str | None:
    """Why a form must not open for this reminder (it is no longer waiting), or None."""
    if draft is None:
        return f"This reminder can no longer be {what}: it no longer exists."
    if draft.state == "planned":
        return None
    at = f" at {local_time(kit, draft.at)}" if draft.at else ""
    done = who_acted(kit, draft.state, draft.by, draft.reason)
    return f"This reminder can no longer be {what}: it was already {done}{at}."


CHANGED_SINCE_DRAWN = (
    "Not approved: this reminder's message changed since this card was drawn (edited, "
    "redrafted, or its contact's address is new), and a person approves only the message they "
    "were shown. The card is drawn again now: read it (Preview) and approve it again."
)
DRAWN_BEFORE_VERSIONS = (
    "Not approved: this card was drawn before Approve named the message it approves, so what "
    "it showed cannot be checked against what would be sent. The card is drawn again now: read "
    "it (Preview) and approve it again."
)


def approving_button(value: str) -> Approving:
    """An Approve button's value: the reminder, and the version of the message its card showed."""
    try:
        return approving(value)
    except ValueError as exc:
        raise OddPayload(f"actions[0].value is no Approve button's: {exc}") from None


def approve(kit: ListenerKit, body: Body) -> None:
    """Approve the message the card showed: refused, and the card drawn again, when the
    reminder's message is no longer that one, or the card (drawn before Approve carried the
    message's version) cannot say which it showed."""
    user, channel = clicker(body)
    button = approving_button(action_value(body))
    reminder_id = button.reminder_id
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    try:
        with runtime.writing() as session:
            decision = approvals.approve(
                session,
                reminder_id,
                user,
                runtime.clock.now(),
                rules=stale_rules(kit),
                undo=undo_window(kit),
                shown=NOT_SHOWN if button.version is None else button.version,
            )
    except UserError as exc:
        kit.tell(channel, user, str(exc), response_url=response_url(body))
        return
    if decision.changed or decision.changed_since or decision.state == "cancelled":
        redraw(kit, [reminder_id])  # cancelled: perhaps by this click
    if decision.changed_since:
        refusal = CHANGED_SINCE_DRAWN if button.version is not None else DRAWN_BEFORE_VERSIONS
        kit.tell(channel, user, refusal, response_url=response_url(body))
    elif not decision.changed:
        kit.tell(channel, user, already(kit, decision), response_url=response_url(body))


def undo(kit: ListenerKit, body: Body) -> None:
    """Undo an approval: the reminder waits for Approve, Edit or Skip again, unless the send
    worker has already taken it."""
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = approvals.withdraw(session, reminder_id, user, runtime.clock.now())
    if decision.changed:
        redraw(kit, [reminder_id])
        return
    if decision.state in ("sending", "sent", "failed", "unknown"):
        kit.tell(
            channel,
            user,
            f"Too late to undo: this reminder is already {decision.state}; "
            "the send worker took it. Ask the customer to ignore it if it should not have gone.",
            response_url=response_url(body),
        )
        return
    kit.tell(channel, user, already(kit, decision), response_url=response_url(body))


def covered(value: str) -> Covered:
    """An Approve all button's value: the plan's day, the tier, and what the button covers."""
    try:
        return covered_by(value)
    except ValueError as exc:
        raise OddPayload(f"actions[0].value is no Approve all button's: {exc}") from None


def approve_all(kit: ListenerKit, body: Body) -> None:
    """Approve exactly what the header showed waiting in that tier (and whose cards were posted);
    the clicker is told how many, with an Undo for them all, through the click's response_url
    (chat.postEphemeral when there is none, or Slack refuses it)."""
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    button = covered(action_value(body))
    runtime = kit.runtime
    now = runtime.clock.now()
    # A button drawn before it named the messages it approves shows none of them, as far as
    # anyone can tell: it approves nothing, and what it covers is drawn again.
    versions = {} if button.versions is None else button.versions
    with runtime.writing() as session:
        done = approvals.approve_all(
            session,
            button.day,
            button.tier,
            user,
            now,
            rules=stale_rules(kit),
            shown=approvals.Shown(ids=button.ids, up_to=button.up_to, versions=versions),
            undo=undo_window(kit),
        )
    if not done.changed() and not done.left and not done.redrawing:
        kit.tell(
            channel,
            user,
            f"Nothing changed: none of the {escape(button.tier)} reminders this button "
            "covers is waiting for approval any more.",
            response_url=response_url(body),
        )
        return
    # the approved, the stale ones cancelled instead, and those left for a new look
    redraw(kit, [*done.changed(), *done.left, *done.redrawing])
    lines = []
    if done.approved:
        count = len(done.approved)
        goes = local_time(kit, now + undo_window(kit))
        lines.append(
            f"Approved {count} {escape(button.tier)} reminder{'' if count == 1 else 's'}: "
            f"none goes out before {goes}. Undo takes back those not yet sent."
        )
    if done.cancelled:
        reasons = sorted(set(done.cancelled.values()))
        why = "; ".join(CANCELLED_BECAUSE.get(r, escape(r)) for r in reasons)
        lines.append(f"{len(done.cancelled)} cancelled instead, not approved: {why}.")
    if done.left:
        lines.append(left_waiting(button, done.left))
    if done.redrawing:
        lines.append(left_while_redrawn(done.redrawing))
    text = "\n".join(lines)
    with_undo = undo_all_blocks(text, button.day, button.tier, now, user) if done.approved else None
    kit.tell(channel, user, text, with_undo, response_url=response_url(body))


NAMED_LEFT = 10  # customers named among those Approve all left waiting; the rest counted


def left_waiting(button: Covered, left: dict[int, str]) -> str:
    """What Approve all left waiting, and why: the customers, by name (escaped)."""
    if button.versions is None:
        why = (
            "this button was drawn before Approve all named the messages it approves, so what "
            "the plan showed cannot be checked against what would be sent"
        )
    else:
        why = (
            "their message changed since this plan was drawn (edited, redrafted, or a new address)"
        )
    return (
        f"{_left_named(left)}: {why}. Their cards and this header are "
        "drawn again now: read them (Preview) and approve again."
    )


def left_while_redrawn(left: dict[int, str]) -> str:
    """What Approve all left waiting because Slack has not yet taken the redraw of their cards, so
    the header may name a message their cards do not show: the customers, by name (escaped)."""
    cards = "its card is" if len(left) == 1 else "their cards are"
    return (
        f"{_left_named(left)}: {cards} being drawn again (Slack "
        "refused the last redraw), so this header may name a message a card does not show yet. "
        "Approve from the card once it is drawn again."
    )


def _left_named(left: dict[int, str]) -> str:
    """ "2 reminders left waiting, not approved (Acme, Beta)": the first customers by name
    (escaped), the rest counted."""
    names = [escape(name) for name in list(left.values())[:NAMED_LEFT]]
    more = len(left) - len(names)
    named = ", ".join(names) + (f" and {more} more" if more else "")
    count = f"{len(left)} reminder{'' if len(left) == 1 else 's'}"
    return f"{count} left waiting, not approved ({named})"


def undo_all(kit: ListenerKit, body: Body) -> None:
    """Undo an Approve all: what that click approved and the send worker has not taken yet."""
    user, channel = clicker(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    try:
        together = undone_by(action_value(body))
    except ValueError as exc:
        raise OddPayload(f"actions[0].value is no Undo button's: {exc}") from None
    # An Undo posted before its value named the approver was told only to them: the clicker.
    approver = together.approved_by or user
    tier = together.tier
    runtime = kit.runtime
    with runtime.writing() as session:
        ids = approvals.approved_together(
            session, together.day, tier, together.approved_at, approver
        )
        undone = approvals.withdraw_all(session, ids, user, runtime.clock.now())
    if undone:
        redraw(kit, undone)
    left = len(ids) - len(undone)
    note = f" {left} had already gone to the send worker or changed since." if left else ""
    kit.tell(
        channel,
        user,
        f"Undone: {len(undone)} {escape(tier)} reminder{'' if len(undone) == 1 else 's'} "
        f"back to waiting for approval.{note}",
        response_url=response_url(body),
    )


def open_edit(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    """The Edit form, prefilled, with how the team wrote this step last time."""
    user, channel, reminder_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder_id, examples=True)
    refusal = decided(kit, draft, "edited")
    if refusal is not None or draft is None:
        kit.tell(channel, user, refusal or "")
        return
    subject = draft.subject if draft.channel == "email" else None
    limit = edit_body_limit(draft.channel)
    if len(draft.body) > limit:  # never cut a customer's message silently
        kit.tell(
            channel,
            user,
            f"This message is {len(draft.body)} characters, "
            f"more than Slack's form can hold ({limit}). Approve or skip it as it is.",
        )
        return
    if subject is not None and len(subject) > EDIT_SUBJECT_LIMIT:  # nor its subject
        kit.tell(
            channel,
            user,
            f"This message's subject is {len(subject)} characters, "
            f"more than Slack's form can hold ({EDIT_SUBJECT_LIMIT}). Approve or skip it as it is.",
        )
        return
    view = edit_modal(
        draft.reminder_id,
        draft.channel,
        subject,
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
    # a trusted step's reminder may be skipped as well, until the send worker claims it
    trusted = draft is not None and approvals.can_skip(draft.state, draft.by)
    refusal = None if trusted else decided(kit, draft, "skipped")
    if refusal is not None or draft is None:
        kit.tell(channel, user, refusal or "")
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
        draft = approvals.draft_of(session, reminder_id, sender=sender_from(kit.runtime.settings))
    if draft is None:
        ack(response_action="errors", errors={Field.BODY: "This reminder no longer exists."})
        return
    problems = approvals.edit_problems(
        draft.channel,
        subject,
        text,
        draft.original,
        draft.invoice_numbers,
        amounts=draft.amounts,
        values=draft.values,
    )
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
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder_id,
            user,
            subject,
            text,
            runtime.clock.now(),
            rules=stale_rules(kit),
            undo=undo_window(kit),
            sender=sender_from(runtime.settings),
        )
    if problems:  # the form checked the same a moment ago: only a changed reminder gets here
        kit.tell(channel, user, "Nothing saved: " + "; ".join(problems.values()))
        return
    if decision.changed or decision.state == "cancelled":  # cancelled: perhaps by this save
        redraw(kit, [reminder_id])
    if decision.changed:
        tell_trust_withdrawn(kit)
    else:
        kit.tell(channel, user, already(kit, decision, "saved or approved"))


def tell_trust_withdrawn(kit: ListenerKit) -> None:
    """An edit of a trusted step's draft took its trust back: told in the finance channel at
    once, unless today's plan is going out there (then the sweep tells it after the plan, as it
    does any withdrawal Slack did not take). The edit is saved whatever happens here."""
    runtime = kit.runtime
    finance = runtime.settings.finance_channel
    if not finance:
        return
    try:
        with runtime.sessions() as session:
            gap = plan_unit.unfinished(session, runtime.today(), runtime.clock.now())
        if gap is not None and not gap.overdue(runtime.clock.now()):
            return
        trust_notices.post_waiting(runtime, kit.slack, finance)
    except Exception:  # the sweep tells it
        log.exception("trust withdrawal not told after an edit; the sweep tells it")


def on_skip_submit(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    user, _ = clicker(body)
    form = submission(view, Field.REASON)
    reason = typed(form.values, Field.REASON) or ""
    ack()
    kit.later(save_skip, user, form.channel, user, form.about, reason, form.channel)


def save_skip(
    kit: ListenerKit, user: str, reminder_id: int, reason: str, channel: str | None
) -> None:
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        decision = approvals.skip(session, reminder_id, user, reason, runtime.clock.now())
    if decision.changed:
        redraw(kit, [reminder_id])
    else:
        kit.tell(channel, user, already(kit, decision))
