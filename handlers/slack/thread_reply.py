"""Reply and Show in an escalation's thread: Reply opens a form pre-filled with a suggested answer
and queues the email for the outbox (bot/escalations/reply.py); Show opens a message sent to the
customer in full."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App

from bot.core.ids import parse_id
from bot.escalations import posting, reply, thread
from bot.reminders.outbox import config_from
from handlers.slack.kit import ListenerKit, on_form_click
from handlers.slack.payload import (
    Body,
    OddPayload,
    clicked,
    clicker,
    entered,
    submission,
    typed,
)
from integrations.base.mrkdwn import mention, mrkdwn
from integrations.slack_escalation import reply_modal, sent_modal
from integrations.slack_ids import Action, Field, Form

ONLY_APPROVERS = "Only approvers can reply to customers. Ask someone in finance."


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.ESC_REPLY)(partial(on_form_click, kit, open_reply))
    app.action(Action.ESC_SENT)(partial(on_form_click, kit, show_sent))
    app.view(Form.ESC_REPLY)(partial(on_reply, kit))


def when_local(at: datetime, zone: str | None) -> str:
    """A moment in the contact's time: "Tue 17 Mar 09:00 EDT"."""
    local = at.astimezone(ZoneInfo(zone)) if zone else at
    return f"{local:%a %-d %b %H:%M} {local.tzname() or ''}".strip()


def open_reply(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    runtime = kit.runtime
    window = config_from(runtime.settings).window
    with runtime.sessions() as session:
        plan = reply.draft(
            session, escalation_id, runtime.clock.now(), window, runtime.settings.business_name
        )
    view = reply_modal(
        escalation_id,
        plan.customer_name,
        plan.to,
        plan.blocked,
        plan.subject,
        plan.text,
        when_local(plan.send_at, plan.zone) + " their time" if plan.send_at else None,
        [(c.invoice_id, c.text) for c in plan.copies],
        plan.copies_asked,
    )
    view["private_metadata"] = f"{escalation_id}|{channel or ''}"
    kit.open_view(trigger_id, view, channel, user)


def show_sent(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel, reminder_id = clicked(body)
    with kit.runtime.sessions() as session:
        customer, subject, text = thread.sent_message(session, reminder_id)
    kit.open_view(trigger_id, sent_modal(customer, subject, text), channel, user)


def on_reply(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """What is wrong with the reply is shown in the form, before the ack; a good one is queued
    after it, once per form (Slack's view id), however often it is submitted."""
    user, _ = clicker(body)
    form = submission(view, Field.BODY)
    subject = typed(form.values, Field.SUBJECT) or ""
    text = typed(form.values, Field.BODY) or ""
    wrong = reply.problems(subject, text)
    if wrong:
        ack(response_action="errors", errors=wrong)
        return
    view_id = view.get("id")
    if not isinstance(view_id, str) or not view_id:
        raise OddPayload("view.id is missing")
    attach = ticked_ids(entered(form.values, Field.ATTACH))
    ack()
    kit.later(save_reply, user, form.channel, user, form.about, subject, text, view_id, attach)


def ticked_ids(entry: Body) -> list[int]:
    """The ids ticked in a checkboxes or multi-select entry; what is not an id is ignored (such
    as "²", a digit to str.isdigit() but not to int(), or a number past any id)."""
    chosen = entry.get("selected_options")
    values = (
        [o.get("value") for o in chosen if isinstance(o, dict)] if isinstance(chosen, list) else []
    )
    ids = (parse_id(v) for v in values if isinstance(v, str))
    return sorted({found for found in ids if found is not None})


def save_reply(
    kit: ListenerKit,
    user: str,
    escalation_id: int,
    subject: str,
    text: str,
    view_id: str,
    attach: list[int] | None = None,
) -> None:
    if not kit.allows(user):
        return
    runtime = kit.runtime
    window = config_from(runtime.settings).window
    with runtime.writing() as session:
        queued = reply.queue(
            session,
            escalation_id,
            user,
            subject,
            text,
            view_id,
            runtime.clock.now(),
            runtime.today(),
            window,
            runtime.settings.business_name,
            attach or (),
        )
        zone = reply.draft(
            session, escalation_id, runtime.clock.now(), window, runtime.settings.business_name
        ).zone
    if not queued.new:
        return  # the same form again: it was queued and told the first time
    when = (
        mrkdwn(
            "It is night for them: queued for ", when_local(queued.send_at, zone), " their time."
        )
        if queued.send_at
        else mrkdwn("It goes out within a minute.")
    )
    copies = (
        f" with {len(attach)} invoice cop{'y' if len(attach) == 1 else 'ies'} (PDF)"
        if attach
        else ""
    )
    note = mrkdwn(
        mention(user), " replied to ", queued.to, " by email", copies, ": “", subject, "”. ", when
    )
    with runtime.sessions() as session:
        posting.after_decision(
            session, kit.slack, escalation_id, note, runtime.today(), runtime.settings.timezone
        )
