"""The /ar command: status, aging, plan, held, forecast, pause, resume, never, automate, assign, report
and help.
Its answer is the ack itself (Slack shows it at once, privately unless the command ends with
`share`); what follows from it (redrawn cards, the report's charts, a new escalation) comes after."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.core.errors import UserError
from bot.core.ids import parse_id
from bot.core.labels import reply_label
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.forecasting.history import payment_habit
from bot.learning import guardrails
from bot.learning.report import post_report
from bot.ledger import accounts, customers
from bot.ledger.aging import aging_report
from bot.ledger.status import status_of
from bot.planning import held, posting
from handlers.slack.command_words import phrase_of, words_of
from handlers.slack.kit import ListenerKit
from handlers.slack.payload import Command, command_of
from handlers.slack.reminders import redraw
from integrations.base.mrkdwn import Mrkdwn, escape, mrkdwn
from integrations.slack_blocks import text_blocks
from integrations.slack_guardrail import guardrail_status
from integrations.slack_plan_views import held_status, held_text
from integrations.slack_text import HELP, aging_text, plan_text, status_text
from integrations.wiring import links_for

COMMAND = "/ar"
NOT_A_MEMBER = ("not_in_channel", "channel_not_found")  # Slack's refusal where arbot is not
NOT_IN_CHANNEL_REPORT = mrkdwn(
    "The report's charts could not be posted: arbot is not in this channel. "
    "Invite it with `/invite @arbot`, then run `/ar report` again."
)
log = logging.getLogger(__name__)
Allows = Callable[[str], bool]  # an approver?


def register(app: App, kit: ListenerKit) -> None:
    app.command(COMMAND)(partial(on_ar, kit))


@dataclass
class Answer:
    text: Mrkdwn  # a plain str handed to answer_ar's handlers is escaped on its way here
    share: bool = False
    cancelled: list[int] = field(default_factory=list)  # reminders whose cards need redrawing
    escalate: bool = False  # an escalation was opened: post it
    report: bool = False  # post the report (charts) to the channel
    forecast: bool | None = None  # work out the cash forecast and post it (True: with amounts)


def on_ar(kit: ListenerKit, ack: Ack, command: dict[str, Any]) -> None:
    typed = command_of(command)
    answer = answer_ar(kit.runtime, kit.allows, typed)
    ack(
        response_type="in_channel" if answer.share else "ephemeral",
        text=answer.text,
        blocks=text_blocks(answer.text),
    )
    user, channel, answer_at = typed.user, typed.channel, typed.response_url
    if answer.cancelled:  # the cards of reminders a pause cancelled say so
        kit.later(redraw, user, channel, answer.cancelled)
    if answer.report and channel:
        kit.later(post_the_report, user, channel, channel, user, answer_at)
    if answer.escalate:
        kit.later(post_escalations, user, channel)
    if answer.forecast is not None:
        kit.later(
            post_forecast, user, channel, channel, user, answer.forecast, answer.share, answer_at
        )


def post_escalations(kit: ListenerKit) -> None:
    sweep(kit.runtime, kit.slack, links=links_for(kit.runtime.settings))


def post_forecast(
    kit: ListenerKit,
    channel: str | None,
    user: str,
    show_amounts: bool,
    share: bool,
    response_url: str | None = None,
) -> None:
    """The cash expected in each of the next 13 weeks (learning from the whole ledger takes
    seconds on a large one: after the ack), to the person who asked, or to the channel. It goes
    to the command's response_url, which reaches any channel or direct message, arbot a member
    or not; the Web API only when Slack sent none or refused it."""
    from bot.forecasting.cash import cash_forecast
    from integrations.slack_forecast import forecast_text

    runtime = kit.runtime
    with runtime.sessions() as session:
        forecast = cash_forecast(session, runtime.today(), 13, runtime.settings.timezone)
    text = forecast_text(forecast, show_amounts)
    if share:
        _share(kit, channel, text, response_url)
        return
    kit.tell(channel, user, text, text_blocks(text), response_url=response_url)


def _share(kit: ListenerKit, channel: str | None, text: Mrkdwn, response_url: str | None) -> None:
    """`text` for everyone in the channel the command was typed in."""
    if response_url and kit.slack.answerable(response_url):
        try:
            kit.slack.respond(response_url, text, text_blocks(text), shared=True)
            return
        except Exception as exc:
            log.warning(
                "could not share at the command's response_url (%s: %s): posting instead",
                type(exc).__name__,
                exc,
            )
    if channel:
        kit.slack.client.chat_postMessage(channel=channel, text=text, blocks=text_blocks(text))


def post_the_report(
    kit: ListenerKit, channel: str, user: str = "", response_url: str | None = None
) -> None:
    """The report with its charts, in `channel`. Files can only be posted where arbot is a
    member: where it is not, the person who asked is told to invite it."""
    try:
        post_report(kit.runtime, kit.slack.client, channel, kit.runtime.today())
    except SlackApiError as exc:
        if exc.response.get("error") not in NOT_A_MEMBER:
            raise
        log.warning("report not posted in %s: %s", channel, exc.response.get("error"))
        kit.tell(channel, user, NOT_IN_CHANNEL_REPORT, response_url=response_url)


def answer_ar(runtime: Runtime, allows: Allows, command: Command) -> Answer:
    """The answer to an `/ar` command: its text, whether to share it, what it cancelled."""
    words = words_of(command.text)
    share = bool(words) and words[-1].lower() == "share"
    if share:
        words = words[:-1]
    user, channel = command.user, command.channel
    in_finance = channel is not None and channel == runtime.settings.finance_channel
    # Amounts go to approvers privately, or to the finance channel; sharing an answer with
    # amounts anywhere else would show them to people who may not see them.
    trusted = in_finance or (allows(user) and not share)
    sub = words[0].lower() if words else "help"
    rest = words[1:]
    handlers: dict[str, Callable[[], str | Answer]] = {
        "status": lambda: _status(runtime, _named(command.text, share), trusted),
        "aging": lambda: _aging(runtime, trusted),
        "plan": lambda: todays_plan(runtime, trusted),
        "pause": lambda: _pause(runtime, rest, user, allows),
        "resume": lambda: _control(runtime, rest, user, allows, "resume"),
        "never": lambda: _control(runtime, rest, user, allows, "never"),
        "automate": lambda: _control(runtime, rest, user, allows, "automate"),
        "assign": lambda: _assign(runtime, rest, user, allows),
        "report": lambda: _report(in_finance),
        "held": lambda: _held(runtime),
        "forecast": lambda: Answer(
            mrkdwn("Working out the cash forecast; it follows here in a moment."),
            forecast=trusted,
        ),
    }
    if sub not in handlers:
        return Answer(HELP if sub == "help" else mrkdwn("I don't know `", sub, "`.\n", HELP))
    try:
        result = handlers[sub]()
    except UserError as exc:  # its words may name customers: escaped like any other text
        return Answer(escape(str(exc)))
    if isinstance(result, Answer):
        result.share = share
        return result
    return Answer(escape(result), share)


def todays_plan(runtime: Runtime, trusted: bool) -> Mrkdwn:
    """Today's plan by tier and state (amounts only when `trusted`): `/ar plan` and App Home."""
    day = runtime.today()
    with runtime.sessions() as session:
        summary = posting.summary_for(session, day)
        states = posting.states_for(session, day)
    return plan_text(summary, states, show_amounts=trusted)


def _named(text: str, share: bool) -> str:
    """The customer a command names with all the words after its first (and before `share`),
    as typed: `/ar status O'Brien's Plumbing`, `/ar status "Smith & Sons"`."""
    rest = text.strip().split(maxsplit=1)[1:]
    named = rest[0].rstrip() if rest else ""
    if share and named.lower().endswith("share"):
        named = named[: -len("share")]
    return phrase_of(named)


def _status(runtime: Runtime, query: str, trusted: bool) -> Mrkdwn:
    if not query:
        raise UserError("Which customer? e.g. `/ar status ACME`")
    today = runtime.today()
    with runtime.sessions() as session:
        customer = customers.find_customer(session, query)
        doc = status_of(session, customer, today)
        who = held.held_on(session, today)
        ref, customer_id = customer.external_id, customer.id
        guarded = guardrails.holds_of(session, customer_id)
        habit = mrkdwn(
            "Pays: ", payment_habit(session, customer_id, today, runtime.settings.timezone)
        )
    line = next((h for h in who or [] if h.customer_id == ref), None)
    why = held_status(today, str(doc["customer"].get("name", ref)), line, who is not None)
    guardrail = guardrail_status(guarded, show_details=trusted)
    return mrkdwn(status_text(doc, show_amounts=trusted), "\n", habit, "\n", why, guardrail)


def _held(runtime: Runtime) -> Mrkdwn:
    """Everyone held back in today's plan, and why: names and reasons, no amounts."""
    today = runtime.today()
    with runtime.sessions() as session:
        return held_text(today, held.held_on(session, today))


def _aging(runtime: Runtime, trusted: bool) -> str:
    if not trusted:
        return "Balances are shown to approvers and in the finance channel only."
    with runtime.sessions() as session:
        return aging_text(aging_report(session, runtime.today()).as_json())


def _must_approve(allows: Allows, user: str) -> None:
    if not allows(user):
        raise UserError("Only approvers can change how an account is followed up.")


def _pause(runtime: Runtime, words: list[str], user: str, allows: Allows) -> Answer:
    _must_approve(allows, user)
    if len(words) < 2:
        raise UserError("Usage: `/ar pause ACME 14d [reason]`")
    reason = " ".join(words[2:])
    with runtime.writing() as session:
        paused = accounts.pause(session, words[0], words[1], reason, user, runtime.clock.now())
        until = paused.customer.paused_until
        name, external_id = paused.customer.name, paused.customer.external_id
    cancelled = paused.cancelled
    note = f" {len(cancelled)} waiting reminder(s) cancelled." if cancelled else ""
    if paused.kept_for:
        return Answer(
            mrkdwn(
                "Reminders to *",
                name,
                f"* are already paused until {until:%Y-%m-%d} for ",
                paused.kept_for,
                f", later than the {words[1]} asked, so that pause stays.{note} To pause for "
                f"less, `/ar resume {external_id}` first, then pause again",
                " (a promise still holds its invoices until its date: *Resume sequence* in the "
                "escalation's thread clears it)."
                if paused.kept_for.startswith("a promise")
                else ".",
            ),
            cancelled=cancelled,
        )
    return Answer(
        mrkdwn("Paused reminders to *", name, f"* until {until:%Y-%m-%d}.{note}"),
        cancelled=cancelled,
    )


def _control(
    runtime: Runtime, words: list[str], user: str, allows: Allows, what: str
) -> str | Answer:
    _must_approve(allows, user)
    if not words:
        raise UserError(f"Usage: `/ar {what} ACME`")
    query = " ".join(words)
    now = runtime.clock.now()
    with runtime.writing() as session:
        if what == "resume":
            name = accounts.resume(session, query, user, now).name
            return mrkdwn("Reminders to *", name, "* are back on.")
        never = what == "never"
        customer, cancelled = accounts.set_never_automate(session, query, never, user, now)
        name = customer.name
    if never:
        note = f" {len(cancelled)} waiting reminder(s) cancelled." if cancelled else ""
        return Answer(
            mrkdwn("*", name, f"* will always go to a person; no automated reminders.{note}"),
            cancelled=cancelled,
        )
    return mrkdwn("*", name, "* gets automated reminders again.")


def _report(in_finance: bool) -> Answer:
    # The report shows amounts to everyone in the channel: only the finance channel gets it.
    if not in_finance:
        return Answer(mrkdwn("The report is posted in the finance channel only: run it there."))
    return Answer(mrkdwn("Working out the report; the charts follow in a moment."), report=True)


def _assign(runtime: Runtime, words: list[str], user: str, allows: Allows) -> Answer:
    _must_approve(allows, user)
    if len(words) < 2:
        raise UserError("Usage: `/ar assign MESSAGE_NUMBER ACME`")
    message_id = parse_id(words[0])
    if message_id is None:
        raise UserError(
            f"`{words[0][:20]}` is not a message number: use the number the unmatched "
            "message shows, e.g. `/ar assign 12 ACME`."
        )
    from bot.replies.assign import assign
    from bot.replies.match import ReplyRules
    from bot.replies.triage import RuleClassifier

    settings = runtime.settings
    rules = ReplyRules.from_settings(settings)
    with runtime.writing() as session:
        result = assign(
            session,
            message_id,
            " ".join(words[1:]),
            user,
            runtime.clock.now(),
            runtime.today(),
            rules,
            # The rules, not an optional LLM: this runs before Slack's 3-second ack.
            RuleClassifier(),
        )
        assert result.customer_id is not None  # an assigned message has its customer
        name = customers.name_of(session, result.customer_id)
    label = reply_label(result.label or "other")
    return Answer(
        mrkdwn(
            f"Message {message_id} is now *",
            name,
            f"*'s reply ({label}); their reminders are paused and the escalation is posted.",
        ),
        cancelled=result.cancelled,
        escalate=True,
    )
