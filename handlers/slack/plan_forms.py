"""An escalation's Record payment plan (and Cancel payment plan), Resume sequence and Reopen: the
plan's form is checked before the ack (a problem shows under its field), Cancel is confirmed in
Slack before it is clicked, Resume asks what to clear and then confirms exactly that, and Reopen
opens a resolved escalation again. Each change is made after the ack;
then the parent message is redrawn and the thread told who did what."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.core.ids import parse_id
from bot.core.money import format_money
from bot.escalations import plan_checks, plans, service
from handlers.slack.escalations import ONLY_APPROVERS, after
from handlers.slack.kit import ListenerKit, on_click, on_form_click
from handlers.slack.payload import Body, OddPayload, clicked, clicker, submission
from integrations.base.mrkdwn import mention, mrkdwn
from integrations.slack_ids import INPUT, Action, Field, Form
from integrations.slack_plans import (
    MAX_INSTALMENTS,
    plan_modal,
    plan_row,
    resume_confirmation,
    resume_modal,
)

log = logging.getLogger(__name__)


def register(app: App, kit: ListenerKit) -> None:
    app.action(Action.ESC_PLAN)(partial(on_form_click, kit, open_plan_form))
    app.action(Action.ESC_RESUME)(partial(on_form_click, kit, open_resume_form))
    app.action(Action.ESC_REOPEN)(partial(on_click, kit, reopen))
    app.action(Action.ESC_PLAN_CANCEL)(partial(on_click, kit, cancel_plan))
    app.view(Form.ESC_PLAN)(partial(on_plan, kit))
    app.view(Form.ESC_RESUME)(partial(on_resume, kit))
    app.view(Form.ESC_RESUME_CONFIRM)(partial(on_resume_confirmed, kit))


def _entry(values: Body, block_id: str) -> Body:
    block = values.get(block_id)
    entry = block.get(INPUT) if isinstance(block, dict) else None
    return entry if isinstance(entry, dict) else {}


def open_plan_form(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        escalation = service.load(session, escalation_id)
        customer = service.customer_name(session, escalation_id) or "this customer"
        if plans.active_plan(session, escalation.customer_id) is not None:
            raise UserError("this account already has a payment plan running")
        invoices = [i for i in service.open_invoices(session, escalation.customer_id)]
        open_ones = [i for i in invoices if not i.disputed]
        if not open_ones:
            raise UserError("this account has no open, undisputed invoice to put on a plan")
        scopes = [
            (i.number, f"{i.number}: {format_money(i.balance, i.currency)}") for i in open_ones
        ]
        if len({i.currency for i in open_ones}) == 1:
            total, currency = plans.balance_of(open_ones)
            scopes.insert(0, (plans.ACCOUNT, f"The whole account: {format_money(total, currency)}"))
    currencies = "/".join(sorted({i.currency for i in open_ones}))  # several: one per invoice
    view = plan_modal(escalation_id, customer, scopes, currencies)
    view["private_metadata"] = f"{escalation_id}|{channel or ''}"
    kit.open_view(trigger_id, view, channel, user)


def on_plan(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """Checked before the ack against the balance of what the plan covers; saved after it."""
    user, _ = clicker(body)
    form = submission(view, Field.PLAN_SCOPE)
    picked = _entry(form.values, Field.PLAN_SCOPE).get("selected_option")
    scope = picked.get("value") if isinstance(picked, dict) else None
    entries = []
    for row in range(1, MAX_INSTALMENTS + 1):
        day_text = _entry(form.values, plan_row("date", row)).get("selected_date")
        amount = _entry(form.values, plan_row("amount", row)).get("value")
        entries.append(
            plan_checks.Entry(
                _day(day_text), amount.strip() if isinstance(amount, str) and amount else None
            )
        )
    try:
        with kit.runtime.sessions() as session:
            escalation = service.load(session, form.about)
            invoices = plans.plan_invoices(session, escalation.customer_id, str(scope or ""))
            balance, currency = plans.balance_of(invoices)
    except UserError as exc:
        ack(response_action="errors", errors={Field.PLAN_SCOPE: str(exc)[:150]})
        return
    checked = plan_checks.check_entries(entries, balance, currency, kit.runtime.today())
    if checked.errors:
        ack(
            response_action="errors",
            errors={plan_row(kind, row + 1): text for (row, kind), text in checked.errors.items()},
        )
        return
    ack()
    kit.later(
        save_plan,
        user,
        form.channel,
        user,
        form.about,
        str(scope),
        [(d.isoformat(), str(a)) for d, a in checked.instalments],
    )


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def save_plan(
    kit: ListenerKit, user: str, escalation_id: int, scope: str, rows: list[tuple[str, str]]
) -> None:
    if not kit.allows(user):
        return
    instalments = [(date.fromisoformat(d), Decimal(a)) for d, a in rows]
    with kit.runtime.writing() as session:
        plan = plans.record(
            session,
            escalation_id,
            user,
            scope,
            instalments,
            kit.runtime.clock.now(),
            today=kit.runtime.today(),  # the day the form checked the dates against
        )
        summary = plans.progress(session, plan.customer_id)
        disputed = plans.still_disputed(session, plan.customer_id)
    after(
        kit,
        escalation_id,
        mrkdwn(
            mention(user),
            " recorded a payment plan. ",
            summary.summary() if summary else "",
            ". The ladder waits while the instalments come in on time.",
            _left_disputed(disputed),
        ),
    )


def _left_disputed(numbers: list[str]) -> str:
    """What a plan leaves out because it is disputed, said in the thread it resolves: those
    invoices are held, not chased, until their dispute is settled."""
    if not numbers:
        return ""
    named = ", ".join(numbers[:3]) + (f" and {len(numbers) - 3} more" if numbers[3:] else "")
    verb, them = ("is", "it") if len(numbers) == 1 else ("are", "them")
    return (
        f" {named} {verb} still disputed: left out of the plan and not chased, and each morning's"
        f" plan lists {them} as held until the dispute is settled."
    )


def open_resume_form(kit: ListenerKit, body: Body, trigger_id: str) -> None:
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.sessions() as session:
        customer = service.customer_name(session, escalation_id) or "this customer"
        closed = service.resolved(session, escalation_id)
        holding = service.on_hold(
            session, escalation_id, kit.runtime.clock.now(), kit.runtime.settings.timezone
        )
    if closed is not None:
        raise UserError(f"this escalation is already resolved ({closed.outcome}): reopen it first")
    view = resume_modal(escalation_id, customer, holding)
    view["private_metadata"] = f"{escalation_id}|{channel or ''}"
    kit.open_view(trigger_id, view, channel, user)


def on_resume(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    """The first step: show what the ticked boxes clear and what stays, before anything does.
    Who submitted it is read before the ack, as in every listener: once acked, nothing may
    raise (see handlers/slack/kit.py `on_click`)."""
    user, _ = clicker(body)
    form = submission(view, Field.CLEAR)
    ticked = _entry(form.values, Field.CLEAR).get("selected_options")
    clear = sorted(
        {
            str(o.get("value"))
            for o in (ticked if isinstance(ticked, list) else [])
            if isinstance(o, dict) and o.get("value") in service.CLEARABLE
        }
    )
    try:
        with kit.runtime.sessions() as session:
            holding = service.on_hold(
                session, form.about, kit.runtime.clock.now(), kit.runtime.settings.timezone
            )
    except UserError as exc:  # e.g. the escalation is gone: close the form and say why
        ack()
        kit.tell(form.channel, user, mrkdwn("Nothing changed: ", str(exc), "."))
        return
    cleared = [text for key, text in holding.items() if key in clear]
    kept = [text for key, text in holding.items() if key not in clear]
    metadata = f"{form.about}|{form.channel or ''}|{','.join(clear)}"
    ack(response_action="push", view=resume_confirmation(metadata, cleared, kept))


def on_resume_confirmed(kit: ListenerKit, ack: Ack, body: Body, view: Body) -> None:
    user, _ = clicker(body)
    metadata = view.get("private_metadata") if isinstance(view, dict) else None
    about, channel, chosen = ([*str(metadata or "").split("|"), "", ""])[:3]
    escalation_id = parse_id(about.strip())  # "²" is a digit to str.isdigit(), not to int()
    if escalation_id is None:
        raise OddPayload("the confirmation does not say which escalation it is about")
    clear = frozenset(c for c in chosen.split(",") if c in service.CLEARABLE)
    ack(response_action="clear")
    kit.later(save_resume, user, channel or None, user, channel or None, escalation_id, clear)


def save_resume(
    kit: ListenerKit, user: str, channel: str | None, escalation_id: int, clear: frozenset[str]
) -> None:
    if not kit.allows(user):
        return
    with kit.runtime.writing() as session:
        closed = service.resolved(session, escalation_id)
        if closed is None:
            cleared, kept = service.resume(
                session,
                escalation_id,
                user,
                kit.runtime.clock.now(),
                clear,
                kit.runtime.settings.timezone,
            )
    if closed is not None:  # resolved while the form was open: say so, change nothing
        kit.tell(
            channel,
            user,
            mrkdwn(
                "Nothing changed: this escalation was resolved meanwhile (", closed.outcome, ")."
            ),
        )
        return
    after(
        kit,
        escalation_id,
        mrkdwn(
            mention(user),
            " resumed the sequence: the next morning's plan picks it up.",
            mrkdwn(" Cleared: ", "; ".join(cleared), ".") if cleared else " Nothing was cleared.",
            mrkdwn(" Still holding: ", "; ".join(kept), ".") if kept else "",
        ),
    )


def reopen(kit: ListenerKit, body: Body) -> None:
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.writing() as session:
        service.reopen(session, escalation_id, user, kit.runtime.clock.now())
    after(kit, escalation_id, mrkdwn(mention(user), " reopened this."))


def cancel_plan(kit: ListenerKit, body: Body) -> None:
    """*Cancel payment plan* (Slack asked the person to confirm before this click came)."""
    user, channel, escalation_id = clicked(body)
    if kit.refused(channel, user, ONLY_APPROVERS):
        return
    with kit.runtime.writing() as session:
        ended = plans.cancel(session, escalation_id, user, kit.runtime.clock.now())
    after(
        kit,
        escalation_id,
        mrkdwn(
            mention(user),
            f" cancelled the payment plan after {ended.paid_count} of {len(ended.steps)} "
            f"instalments ({format_money(ended.paid, ended.currency)} of "
            f"{format_money(ended.total, ended.currency)} paid). The reminder ladder resumes "
            "with the next morning's plan.",
        ),
    )
