"""An escalation's buttons (Claim, Record promise, Mark disputed, Resume sequence, Resolve), their
forms, and what people write in its thread. A change is acknowledged first, made after, and then
the parent message is redrawn and the thread told who did what."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.core.labels import state_label
from bot.core.money import format_money
from bot.escalations import outcomes, posting, service
from handlers.slack import thread_reply
from handlers.slack.kit import ListenerKit, on_click, on_form_click
from handlers.slack.payload import (
    Body,
    chosen,
    clicked,
    clicker,
    event_text,
    file_names,
    first_action,
    message_text,
    submission,
    typed,
)
from integrations.base.mrkdwn import Mrkdwn, join, mention, mrkdwn
from integrations.slack_escalation import OUTCOMES, dispute_modal, promise_modal, resolve_modal
from integrations.slack_ids import ALL_INVOICES, INPUT, Action, Field, Form

log = logging.getLogger(__name__)
ONLY_APPROVERS = "Only approvers can act on escalations. Ask someone in finance."
PROMISE_PREFILL_DAYS = 7  # the promise form suggests a date a week ahead
MAX_NAMED = 10  # invoices named in a thread's note; the rest are counted
FORM_BUTTONS = (Action.ESC_PROMISE, Action.ESC_DISPUTE, Action.ESC_RESOLVE)
# a plain reply (no subtype), one also sent to the channel, one with files
NOTE_SUBTYPES = (None, "thread_broadcast", "file_share")


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.ESC_CLAIM)(partial(on_click, kit, claim))
    for button in FORM_BUTTONS:
        app.action(button)(partial(on_form_click, kit, open_form))
    app.view(Form.ESC_PROMISE)(partial(on_promise, kit))
    app.view(Form.ESC_DISPUTE)(partial(on_dispute, kit))
    app.view(Form.ESC_RESOLVE)(partial(on_resolve, kit))
    app.event("message")(partial(on_message, kit))
    thread_reply.register(app, kit)


def after(kit: ListenerKit, escalation_id: int, note: Mrkdwn) -> None:
    """Re-draw the parent message and say what happened in the thread."""
    runtime = kit.runtime
    with runtime.sessions() as session:
        posting.after_decision(
            session, kit.slack, escalation_id, note, runtime.today(), runtime.settings.timezone
        )


def claim(kit: ListenerKit, body: Body) -> None:
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.writing() as session:
        holder = service.claim(session, escalation_id, user, kit.runtime.clock.now())
    if holder is not None:
        who = (
            mrkdwn("claimed by ", mention(holder))
            if holder.startswith(("U", "W"))
            else state_label(holder)
        )
        kit.tell(channel, user, mrkdwn("Nothing changed: this escalation is already ", who, "."))
        return
    after(kit, escalation_id, mrkdwn(mention(user), " claimed this."))


def open_form(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    """The form of Record promise, Mark disputed or Resolve."""
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    button = first_action(body).get("action_id")
    with kit.runtime.sessions() as session:
        customer = service.customer_name(session, escalation_id) or "this customer"
        closed = service.resolved(session, escalation_id)
    if closed is not None and button == Action.ESC_RESOLVE:
        kit.tell(channel, user, already_resolved(kit, closed))
        return
    if button == Action.ESC_PROMISE:
        in_a_week = kit.runtime.today() + timedelta(days=PROMISE_PREFILL_DAYS)
        view = promise_modal(escalation_id, customer, in_a_week.isoformat())
    elif button == Action.ESC_DISPUTE:
        with kit.runtime.sessions() as session:
            invoices = service.open_invoices(
                session, service.load(session, escalation_id).customer_id
            )
            choices = [
                (i.number, f"{i.number} · {format_money(i.balance, i.currency)}") for i in invoices
            ]
        view = dispute_modal(escalation_id, customer, choices)
    else:
        view = resolve_modal(escalation_id, customer)
    view["private_metadata"] = f"{escalation_id}|{channel or ''}"
    kit.open_view(trigger_id, view, channel, user)


def promised(picked: str | None) -> date | None:
    """The day picked in the promise form (None: none, or not a date)."""
    try:
        return date.fromisoformat(picked) if picked else None
    except ValueError:
        return None


def on_promise(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """A date in the past is refused in the form, before the ack; a good one is saved after."""
    user, _ = clicker(body)
    form = submission(view, Field.DATE)
    day = promised(chosen(form.values, Field.DATE, "selected_date"))
    if day is None or day < kit.runtime.today():
        ack(response_action="errors", errors={Field.DATE: "Pick today or a later date."})
        return
    ack()
    kit.later(save_promise, user, form.channel, user, form.about, day.isoformat())


def save_promise(kit: ListenerKit, user: str, escalation_id: int, chosen: str) -> None:
    if not kit.allows(user):
        return
    runtime = kit.runtime
    with runtime.writing() as session:
        until = service.record_promise(
            session,
            escalation_id,
            user,
            date.fromisoformat(chosen),
            runtime.settings.promise_grace_days,
            runtime.clock.now(),
            today=runtime.today(),  # the day the form checked the date against
            timezone=runtime.settings.timezone,
        )
    after(
        kit,
        escalation_id,
        mrkdwn(
            mention(user),
            f" recorded a promise to pay by {chosen}. Nothing automated goes out "
            f"before {until:%Y-%m-%d}.",
        ),
    )


def on_dispute(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    user, _ = clicker(body)
    form = submission(view, Field.REASON)
    picked = picked_invoices(form.values)
    if picked == []:
        ack(response_action="errors", errors={Field.INVOICES: "Pick at least one invoice."})
        return
    ack()
    reason = typed(form.values, Field.REASON) or ""
    kit.later(save_dispute, user, form.channel, user, form.about, reason, picked)


def picked_invoices(values: Body) -> list[str] | None:
    """The invoices picked in the dispute form (None: every open one, picked as such or in a
    form drawn without the choice)."""
    block = values.get(Field.INVOICES)
    entry = block.get(INPUT) if isinstance(block, dict) else None
    if not isinstance(entry, dict):
        return None
    options = entry.get("selected_options")
    if not isinstance(options, list):
        return []
    picked = [
        o["value"] for o in options if isinstance(o, dict) and isinstance(o.get("value"), str)
    ]
    return None if ALL_INVOICES in picked else picked


def save_dispute(
    kit: ListenerKit, user: str, escalation_id: int, reason: str, picked: list[str] | None = None
) -> None:
    if not kit.allows(user):
        return
    with kit.runtime.writing() as session:
        numbers = service.mark_disputed(
            session, escalation_id, user, reason, kit.runtime.clock.now(), picked
        )
    after(
        kit,
        escalation_id,
        mrkdwn(
            mention(user),
            " marked ",
            _some_of(numbers) or "the invoices",
            " disputed",
            mrkdwn(": ", reason) if reason else "",
            ". No automated message goes out about them until this is resolved.",
        ),
    )


def _some_of(numbers: list[str]) -> Mrkdwn:
    """Invoice numbers for a thread's note: the first MAX_NAMED, then how many more."""
    more = len(numbers) - MAX_NAMED
    return mrkdwn(join(numbers[:MAX_NAMED], ", "), f" and {more} more" if more > 0 else "")


def on_resolve(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """An outcome that cannot close the escalation as the account stands (a dispute it does not
    settle) is refused under the outcome, before the ack; a good one is saved after."""
    user, _ = clicker(body)
    form = submission(view, Field.OUTCOME)
    choice = chosen(form.values, Field.OUTCOME, "selected_option") or "no_action"
    note = typed(form.values, Field.NOTE) or ""
    try:
        with kit.runtime.sessions() as session:
            refused = outcomes.refusal(session, form.about, choice)
    except UserError:  # e.g. the escalation is gone: saving it says so
        refused = None
    if refused is not None:
        ack(response_action="errors", errors={Field.OUTCOME: refused})
        return
    ack()
    kit.later(save_resolve, user, form.channel, user, form.channel, form.about, choice, note)


def save_resolve(
    kit: ListenerKit, user: str, channel: str | None, escalation_id: int, choice: str, note: str
) -> None:
    if not kit.allows(user):
        return
    label = dict(OUTCOMES).get(choice, choice)
    outcome = f"{label}: {note}" if note else label
    with kit.runtime.writing() as session:
        done = outcomes.resolve(
            session, escalation_id, user, choice, outcome, kit.runtime.clock.now()
        )
        closed = None if done else service.resolved(session, escalation_id)
    if done:
        after(kit, escalation_id, mrkdwn(mention(user), " resolved this: ", outcome, "."))
    elif closed is not None:  # resolved while the form was open: say so, never drop it in silence
        kit.tell(channel, user, already_resolved(kit, closed))


def already_resolved(kit: ListenerKit, closed: service.Resolved) -> Mrkdwn:
    """The refusal for a Resolve on what is resolved: who did it, when (local time), and how."""
    who = mention(closed.actor) if closed.actor.startswith(("U", "W")) else "arbot"
    when = closed.at.astimezone(ZoneInfo(kit.runtime.settings.timezone)).strftime("%-d %b %H:%M %Z")
    return mrkdwn(
        "Nothing changed: ", who, " already resolved this at ", when, ": ", closed.outcome, "."
    )


def on_message(kit: ListenerKit, event: dict[str, Any]) -> None:
    """What a person writes in an escalation's thread goes into the customer's history: a reply,
    one also sent to the channel, or one with files (named in the note). Bots' messages, edits,
    deletions and Slack's own notices (someone joined) are not notes."""
    thread, user = event_text(event, "thread_ts"), event_text(event, "user")
    subtype = event.get("subtype")
    if not thread or subtype not in NOTE_SUBTYPES or event.get("bot_id") or not user:
        return
    files = file_names(event)
    attached = f"({'files' if len(files) > 1 else 'file'} attached: {', '.join(files)})"
    written = message_text(event)
    note = " ".join(part for part in (written.text, attached if files else "") if part)
    runtime = kit.runtime
    with runtime.writing() as session:
        escalation_id = service.in_thread(session, event_text(event, "channel"), thread)
        if escalation_id is None:
            return
        try:
            service.thread_note(
                session, escalation_id, user, note, runtime.clock.now(), written.mentions
            )
        except UserError:
            log.warning("thread note for a missing escalation %s", escalation_id)
