"""Slack's entry points (Bolt listeners): ack first, then verify who is asking, call one bot/
function, and answer. Signatures are checked by Bolt before any listener runs."""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.escalations import service
from bot.escalations.sweeps import sweep
from bot.learning.report import post_report
from bot.ledger import accounts, customers
from bot.ledger.aging import aging_report
from bot.ledger.status import account_status
from bot.planning import posting
from bot.reminders import approvals
from handlers import escalation_actions, proposal_actions, review_actions
from handlers.listener_kit import ListenerKit
from integrations.slack_blocks import edit_modal, home_view, skip_modal, text_blocks
from integrations.slack_chat import SlackChat
from integrations.slack_text import HELP, aging_text, plan_text, status_text
from integrations.wiring import links_for

log = logging.getLogger(__name__)
MEMBERS_TTL_SECONDS = 60
LISTENER_THREADS = 64
EDIT_LIMITS = {"email": 3000, "sms": 320}  # what Slack's multi-line input holds
WORK_THREADS = 2


class Approvers:
    """ARBOT_APPROVERS, or (when empty) every member of the finance channel, looked up briefly cached."""

    def __init__(self, runtime: Runtime, client: WebClient) -> None:
        self.listed = set(runtime.settings.approvers)
        self.channel = runtime.settings.finance_channel
        self.client = client
        self._members: set[str] = set()
        self._fetched = 0.0

    def allows(self, user: str) -> bool:
        if self.listed:
            return user in self.listed
        if not self.channel:
            return False
        if time.monotonic() - self._fetched > MEMBERS_TTL_SECONDS:
            members: set[str] = set()
            for page in self.client.conversations_members(channel=self.channel, limit=1000):
                members.update(page["members"])
            self._members, self._fetched = members, time.monotonic()
        return user in self._members


def build_bolt(runtime: Runtime, client: WebClient) -> App:
    settings = runtime.settings
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    app = App(
        client=client,
        signing_secret=secret,
        # Enough threads that a burst of clicks is acknowledged at once, not queued behind work.
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS),
        token_verification_enabled=False,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    approvers = Approvers(runtime, client)
    slack = SlackChat(client)
    # The work after an ack (database, redrawing messages) runs on a few threads of its own, so
    # listener threads are free at once and a burst of clicks is acknowledged without waiting.
    workers = ThreadPoolExecutor(max_workers=WORK_THREADS, thread_name_prefix="arbot-work")

    def later(work: Callable[..., None], user: str, channel: str | None, *args: Any) -> None:
        """Run the work after the ack; if it fails, the person who clicked is told, not only
        the log (nothing fails silently)."""

        def run() -> None:
            try:
                work(*args)
            except Exception as exc:
                log.exception("Slack work failed after ack: %s", getattr(work, "__name__", work))
                try:
                    tell(
                        channel,
                        user,
                        f"That may not have gone through ({type(exc).__name__}). Please check "
                        "the message, and try again if nothing changed.",
                    )
                except Exception:
                    log.exception("could not tell %s that their action failed", user)

        workers.submit(run)

    timezone = settings.timezone

    def refresh(ids: list[int]) -> None:
        with runtime.sessions() as session:
            posting.refresh(session, slack, ids, timezone)

    def tell(channel: str | None, user: str, text: str) -> None:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)

    def refused(channel: str | None, user: str) -> bool:
        if approvers.allows(user):
            return False
        tell(channel, user, "Only approvers can act on reminders. Ask someone in finance.")
        return True

    def already(decision: approvals.Decision) -> str:
        who = f" by <@{decision.by}>" if decision.by and decision.by != "playbook" else ""
        if decision.by == "playbook":
            who = " by the playbook"
        at = f" at {decision.at.strftime('%H:%M UTC')}" if decision.at else ""
        return f"Nothing changed: this reminder was already {decision.state}{who}{at}."

    @app.action("approve")
    def on_approve(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(approve, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def approve(body: dict[str, Any]) -> None:
        user, channel, reminder_id = clicked(body)
        if refused(channel, user):
            return
        try:
            with runtime.writing() as session:
                decision = approvals.approve(session, reminder_id, user, runtime.clock.now())
        except UserError as exc:
            tell(channel, user, str(exc))
            return
        if decision.changed:
            refresh([reminder_id])
        else:
            tell(channel, user, already(decision))

    @app.action(re.compile(r"^approve_all_(strategic|standard|transactional)$"))
    def on_approve_all(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(approve_all, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def approve_all(body: dict[str, Any]) -> None:
        user, channel = body["user"]["id"], body.get("channel", {}).get("id")
        if refused(channel, user):
            return
        day_text, tier = body["actions"][0]["value"].split("|")
        with runtime.writing() as session:
            ids = approvals.approve_all(
                session, date.fromisoformat(day_text), tier, user, runtime.clock.now()
            )
        if ids:
            refresh(ids)
        else:
            tell(channel, user, f"Nothing changed: no {tier} reminder is waiting for approval.")

    @app.action("edit")
    def on_edit(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user, channel, reminder_id = clicked(body)
        if refused(channel, user):
            return
        with runtime.sessions() as session:
            draft = approvals.draft_of(session, reminder_id, examples=True)
        if draft is None or draft.state != "planned":
            state = draft.state if draft else "gone"
            tell(channel, user, f"This reminder can no longer be edited: it is {state}.")
            return
        limit = EDIT_LIMITS.get(draft.channel or "email", 3000)
        if len(draft.body) > limit:  # never cut a customer's message silently
            tell(
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
        open_view(body, view, channel, user)

    @app.action("skip")
    def on_skip(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user, channel, reminder_id = clicked(body)
        if refused(channel, user):
            return
        with runtime.sessions() as session:
            draft = approvals.draft_of(session, reminder_id)
        if draft is None:
            return
        view = skip_modal(reminder_id, draft.customer_name)
        view["private_metadata"] = f"{reminder_id}|{channel or ''}"
        open_view(body, view, channel, user)

    def open_view(
        body: dict[str, Any], view: dict[str, Any], channel: str | None, user: str
    ) -> None:
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            if exc.response.get("error") == "expired_trigger_id":
                tell(
                    channel,
                    user,
                    "Slack took too long to open the form. Please click the button again.",
                )
            else:
                log.exception("views.open failed")
                tell(
                    channel, user, f"Slack refused to open the form ({exc.response.get('error')})."
                )

    @app.view("edit_reminder")
    def on_edit_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        reminder_id_text, _, channel = view["private_metadata"].partition("|")
        values = view["state"]["values"]
        subject = values.get("subject", {}).get("value", {}).get("value")
        text = values.get("body", {}).get("value", {}).get("value") or ""
        reminder_id = int(reminder_id_text)
        with runtime.sessions() as session:
            draft = approvals.draft_of(session, reminder_id)
        channel_kind = draft.channel if draft else None
        problems = approvals.edit_problems(channel_kind, subject, text)
        if problems:  # shown inline in the modal, nothing saved
            ack(response_action="errors", errors=problems)
            return
        ack()
        later(save_edit, user, channel or None, user, reminder_id, subject, text, channel)

    def save_edit(
        user: str, reminder_id: int, subject: str | None, text: str, channel: str
    ) -> None:
        if not approvers.allows(user):
            return
        with runtime.writing() as session:
            decision, _ = approvals.edit(
                session, reminder_id, user, subject, text, runtime.clock.now()
            )
        if decision.changed:
            refresh([reminder_id])
        else:
            tell(channel or None, user, already(decision))

    @app.view("skip_reminder")
    def on_skip_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        channel = view["private_metadata"].partition("|")[2] or None
        later(save_skip, body["user"]["id"], channel, body, view)

    def save_skip(body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        if not approvers.allows(user):
            return
        reminder_id_text, _, channel = view["private_metadata"].partition("|")
        reason = (view["state"]["values"].get("reason", {}).get("value", {}).get("value")) or ""
        with runtime.writing() as session:
            decision = approvals.skip(
                session, int(reminder_id_text), user, reason, runtime.clock.now()
            )
        if decision.changed:
            refresh([int(reminder_id_text)])
        else:
            tell(channel or None, user, already(decision))

    def post_escalations() -> None:
        sweep(runtime, slack, links=links_for(runtime.settings))

    def post_the_report(command: dict[str, Any]) -> None:
        post_report(runtime, client, command["channel_id"], runtime.today())

    @app.command("/ar")
    def on_ar(ack: Ack, command: dict[str, Any]) -> None:
        answer = answer_ar(runtime, approvers, command)
        ack(
            response_type="in_channel" if answer.share else "ephemeral",
            text=answer.text,
            blocks=text_blocks(answer.text),
        )
        if answer.cancelled:  # the cards of reminders a pause cancelled say so
            later(refresh, command["user_id"], command.get("channel_id"), answer.cancelled)
        if answer.report:
            later(post_the_report, command["user_id"], command.get("channel_id"), command)
        if answer.escalate:
            later(post_escalations, command["user_id"], command.get("channel_id"))

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        """Whatever a listener raises reaches a person, not only the log."""
        log.error("Slack listener failed: %s", error, exc_info=error)
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if user and channel:
            try:
                tell(
                    channel,
                    user,
                    f"Something went wrong ({type(error).__name__}); nothing was "
                    "changed. Please try again, or tell whoever runs arbot.",
                )
            except Exception:
                log.exception("could not tell %s about the failure", user)

    @app.middleware
    def same_workspace(context: Any, next: Callable[[], Any]) -> Any:
        """Only requests from the workspace the bot is installed in (E9)."""
        result = context.authorize_result
        if (
            result is not None
            and context.team_id
            and result.team_id
            and context.team_id != result.team_id
        ):
            log.warning("refused a request from workspace %s", context.team_id)
            return BoltResponse(status=403, body="wrong workspace")
        return next()

    kit = ListenerKit(runtime, slack, approvers.allows, later, tell, open_view)
    for listeners in (escalation_actions, review_actions, proposal_actions):
        listeners.register(app, kit)

    @app.event("app_home_opened")
    def on_home(event: dict[str, Any]) -> None:
        user = event["user"]
        client.views_publish(user_id=user, view=home_for(runtime, approvers.allows(user)))

    return app


@dataclass
class Answer:
    text: str
    share: bool = False
    cancelled: list[int] = field(default_factory=list)  # reminders whose cards need redrawing
    escalate: bool = False  # an escalation was opened: post it
    report: bool = False  # post the report (charts) to the channel


def clicked(body: dict[str, Any]) -> tuple[str, str | None, int]:
    """Who clicked, in which channel, on which reminder (a button's value is its id)."""
    return body["user"]["id"], body.get("channel", {}).get("id"), int(body["actions"][0]["value"])


def answer_ar(runtime: Runtime, approvers: Approvers, command: dict[str, Any]) -> Answer:
    """The answer to an `/ar` command: its text, whether to share it, what it cancelled."""
    try:
        words = shlex.split(command.get("text", ""))
    except ValueError:
        words = command.get("text", "").split()
    share = bool(words) and words[-1].lower() == "share"
    if share:
        words = words[:-1]
    user, channel = command["user_id"], command.get("channel_id")
    in_finance = channel is not None and channel == runtime.settings.finance_channel
    # Amounts go to approvers privately, or to the finance channel; sharing an answer with
    # amounts anywhere else would show them to people who may not see them.
    trusted = in_finance or (approvers.allows(user) and not share)
    sub = words[0].lower() if words else "help"
    rest = words[1:]
    handlers: dict[str, Callable[[], str | Answer]] = {
        "status": lambda: _status(runtime, rest, trusted),
        "aging": lambda: _aging(runtime, trusted),
        "plan": lambda: _plan(runtime, trusted),
        "pause": lambda: _pause(runtime, rest, user, approvers),
        "resume": lambda: _control(runtime, rest, user, approvers, "resume"),
        "never": lambda: _control(runtime, rest, user, approvers, "never"),
        "automate": lambda: _control(runtime, rest, user, approvers, "automate"),
        "assign": lambda: _assign(runtime, rest, user, approvers),
        "report": lambda: _report(in_finance),
    }
    if sub not in handlers:
        return Answer(HELP if sub == "help" else f"I don't know `{sub}`.\n{HELP}")
    try:
        result = handlers[sub]()
    except UserError as exc:
        return Answer(str(exc))
    if isinstance(result, Answer):
        result.share = share
        return result
    return Answer(result, share)


def _status(runtime: Runtime, words: list[str], trusted: bool) -> str:
    if not words:
        raise UserError("Which customer? e.g. `/ar status ACME`")
    with runtime.sessions() as session:
        doc = account_status(session, " ".join(words), runtime.today())
    return status_text(doc, show_amounts=trusted)


def _aging(runtime: Runtime, trusted: bool) -> str:
    if not trusted:
        return "Balances are shown to approvers and in the finance channel only."
    with runtime.sessions() as session:
        return aging_text(aging_report(session, runtime.today()).as_json())


def _plan(runtime: Runtime, trusted: bool) -> str:
    day = runtime.today()
    with runtime.sessions() as session:
        summary = posting.summary_for(session, day)
        states = posting.states_for(session, day)
    return plan_text(summary, states, show_amounts=trusted)


def _must_approve(approvers: Approvers, user: str) -> None:
    if not approvers.allows(user):
        raise UserError("Only approvers can change how an account is followed up.")


def _pause(runtime: Runtime, words: list[str], user: str, approvers: Approvers) -> Answer:
    _must_approve(approvers, user)
    if len(words) < 2:
        raise UserError("Usage: `/ar pause ACME 14d [reason]`")
    reason = " ".join(words[2:])
    with runtime.writing() as session:
        customer, cancelled = accounts.pause(
            session, words[0], words[1], reason, user, runtime.clock.now()
        )
        until = customer.paused_until
        name = customer.name
    note = f" {len(cancelled)} waiting reminder(s) cancelled." if cancelled else ""
    return Answer(
        f"Paused reminders to *{name}* until {until:%Y-%m-%d}.{note}", cancelled=cancelled
    )


def _control(
    runtime: Runtime, words: list[str], user: str, approvers: Approvers, what: str
) -> str | Answer:
    _must_approve(approvers, user)
    if not words:
        raise UserError(f"Usage: `/ar {what} ACME`")
    query = " ".join(words)
    now = runtime.clock.now()
    with runtime.writing() as session:
        if what == "resume":
            name = accounts.resume(session, query, user, now).name
            return f"Reminders to *{name}* are back on."
        never = what == "never"
        customer, cancelled = accounts.set_never_automate(session, query, never, user, now)
        name = customer.name
    if never:
        note = f" {len(cancelled)} waiting reminder(s) cancelled." if cancelled else ""
        return Answer(
            f"*{name}* will always go to a person; no automated reminders.{note}",
            cancelled=cancelled,
        )
    return f"*{name}* gets automated reminders again."


def _report(in_finance: bool) -> Answer:
    # The report shows amounts to everyone in the channel: only the finance channel gets it.
    if not in_finance:
        return Answer("The report is posted in the finance channel only: run it there.")
    return Answer("Working out the report; the charts follow in a moment.", report=True)


def _assign(runtime: Runtime, words: list[str], user: str, approvers: Approvers) -> Answer:
    _must_approve(approvers, user)
    if len(words) < 2 or not words[0].isdigit():
        raise UserError("Usage: `/ar assign MESSAGE_NUMBER ACME`")
    from bot.replies.assign import assign
    from bot.replies.match import ReplyRules
    from bot.replies.triage import RuleClassifier

    settings = runtime.settings
    rules = ReplyRules.from_settings(settings)
    with runtime.writing() as session:
        result = assign(
            session,
            int(words[0]),
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
    label = (result.label or "other").replace("_", " ")
    return Answer(
        f"Message {words[0]} is now *{name}*'s reply ({label}); their reminders are paused and "
        "the escalation is posted.",
        cancelled=result.cancelled,
        escalate=True,
    )


def home_for(runtime: Runtime, trusted: bool) -> dict[str, Any]:
    day = runtime.today()
    with runtime.sessions() as session:
        queue = _plan(runtime, trusted)
        escalations = service.unresolved(session, limit=30)
        aging = (
            aging_text(aging_report(session, day).as_json())
            if trusted
            else "Balances are shown to approvers only."
        )
    lines = [
        f"• {name}: {reason}" + (f" (<@{owner}>)" if owner else "") + f", {state}"
        for name, reason, owner, state in escalations
    ] or ["No open escalations."]
    return home_view(queue, "\n".join(lines), aging)
