"""Bolt listeners for an escalation's buttons (Claim, Record promise, Mark disputed, Resume
sequence, Resolve), their forms, and the messages people write in its thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserError
from bot.escalations import posting, service
from handlers.listener_kit import ListenerKit
from integrations.slack_escalation import OUTCOMES, dispute_modal, promise_modal, resolve_modal

log = logging.getLogger(__name__)


def register(app: App, kit: ListenerKit) -> None:
    runtime, slack, allows, later, tell = kit.runtime, kit.slack, kit.allows, kit.later, kit.tell
    open_view = kit.open_view
    settings = runtime.settings

    def clicked(body: dict[str, Any]) -> tuple[str, str | None, int]:
        return (
            body["user"]["id"],
            body.get("channel", {}).get("id"),
            int(body["actions"][0]["value"]),
        )

    def refused(channel: str | None, user: str) -> bool:
        if allows(user):
            return False
        tell(channel, user, "Only approvers can act on service. Ask someone in finance.")
        return True

    def after(escalation_id: int, note: str) -> None:
        """Re-draw the parent message and say what happened in the thread."""
        with runtime.sessions() as session:
            posting.after_decision(
                session, slack, escalation_id, note, runtime.today(), settings.timezone
            )

    def customer_name(escalation_id: int) -> str:
        with runtime.sessions() as session:
            name = service.customer_name(session, escalation_id)
        return name or "this customer"

    @app.action("esc_claim")
    def on_claim(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(claim, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def claim(body: dict[str, Any]) -> None:
        user, channel, escalation_id = clicked(body)
        if refused(channel, user):
            return
        with runtime.writing() as session:
            holder = service.claim(session, escalation_id, user, runtime.clock.now())
        if holder is not None:
            who = f"<@{holder}>" if holder.startswith(("U", "W")) else holder
            tell(channel, user, f"Nothing changed: this escalation is already {who}.")
            return
        after(escalation_id, f"<@{user}> claimed this.")

    def form(action_id: str, build: Callable[[int, str], dict[str, Any]]) -> None:
        @app.action(action_id)
        def on_click(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            user, channel, escalation_id = clicked(body)
            if refused(channel, user):
                return
            view = build(escalation_id, customer_name(escalation_id))
            view["private_metadata"] = f"{escalation_id}|{channel or ''}"
            open_view(body, view, channel, user)

    form(
        "esc_promise",
        lambda i, name: promise_modal(i, name, (runtime.today() + timedelta(days=7)).isoformat()),
    )
    form("esc_dispute", dispute_modal)
    form("esc_resolve", resolve_modal)

    def submitted(view: dict[str, Any]) -> tuple[int, str | None, dict[str, Any]]:
        escalation_text, _, channel = view["private_metadata"].partition("|")
        return int(escalation_text), channel or None, view["state"]["values"]

    @app.view("esc_promise")
    def on_promise(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        escalation_id, channel, values = submitted(view)
        chosen = values.get("date", {}).get("value", {}).get("selected_date")
        if not chosen or date.fromisoformat(chosen) < runtime.today():
            ack(response_action="errors", errors={"date": "Pick today or a later date."})
            return
        ack()
        later(save_promise, body["user"]["id"], channel, body["user"]["id"], escalation_id, chosen)

    def save_promise(user: str, escalation_id: int, chosen: str) -> None:
        if not allows(user):
            return
        with runtime.writing() as session:
            until = service.record_promise(
                session,
                escalation_id,
                user,
                date.fromisoformat(chosen),
                settings.promise_grace_days,
                runtime.clock.now(),
            )
        after(
            escalation_id,
            f"<@{user}> recorded a promise to pay by {chosen}. Nothing automated goes out "
            f"before {until:%Y-%m-%d}.",
        )

    @app.view("esc_dispute")
    def on_dispute(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        escalation_id, channel, values = submitted(view)
        reason = values.get("reason", {}).get("value", {}).get("value") or ""
        later(save_dispute, body["user"]["id"], channel, body["user"]["id"], escalation_id, reason)

    def save_dispute(user: str, escalation_id: int, reason: str) -> None:
        if not allows(user):
            return
        with runtime.writing() as session:
            numbers = service.mark_disputed(
                session, escalation_id, user, reason, runtime.clock.now()
            )
        after(
            escalation_id,
            f"<@{user}> marked {', '.join(numbers) or 'the invoices'} disputed: {reason}. "
            "No automated message goes out about them until this is resolved.",
        )

    @app.action("esc_resume")
    def on_resume(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        later(resume, body["user"]["id"], body.get("channel", {}).get("id"), body)

    def resume(body: dict[str, Any]) -> None:
        user, channel, escalation_id = clicked(body)
        if refused(channel, user):
            return
        with runtime.writing() as session:
            service.resume(session, escalation_id, user, runtime.clock.now())
        after(
            escalation_id,
            f"<@{user}> resumed the sequence: the next morning's plan picks it up.",
        )

    @app.view("esc_resolve")
    def on_resolve(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        escalation_id, channel, values = submitted(view)
        choice = (values.get("outcome", {}).get("value", {}).get("selected_option") or {}).get(
            "value", "no_action"
        )
        note = values.get("note", {}).get("value", {}).get("value") or ""
        later(
            save_resolve,
            body["user"]["id"],
            channel,
            body["user"]["id"],
            escalation_id,
            choice,
            note,
        )

    def save_resolve(user: str, escalation_id: int, choice: str, note: str) -> None:
        if not allows(user):
            return
        label = dict(OUTCOMES).get(choice, choice)
        outcome = f"{label}: {note}" if note else label
        with runtime.writing() as session:
            done = service.resolve(session, escalation_id, user, outcome, runtime.clock.now())
        if done:
            after(escalation_id, f"<@{user}> resolved this: {outcome}.")

    @app.event("message")
    def on_message(event: dict[str, Any]) -> None:
        """What a person writes in an escalation's thread goes into the customer's history."""
        thread = event.get("thread_ts")
        if not thread or event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        with runtime.writing() as session:
            escalation_id = service.in_thread(session, event.get("channel"), thread)
            if escalation_id is None:
                return
            try:
                service.thread_note(
                    session,
                    escalation_id,
                    event["user"],
                    event.get("text", ""),
                    runtime.clock.now(),
                )
            except UserError:
                log.warning("thread note for a missing escalation %s", escalation_id)
