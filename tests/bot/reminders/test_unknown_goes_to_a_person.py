"""A reminder that may or may not have gone out (`unknown`) is handed to a person in the same
transaction that marks it: its customer's escalation, which the sweep posts to Slack. A run that
fails or is killed after that commit, before it tells the finance channel, loses nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Escalation, Reminder
from bot.core.runtime import Runtime
from bot.escalations import posting
from bot.reminders.in_doubt import SEND_UNKNOWN, detail
from integrations.base.outbound import Delivery, Outgoing
from integrations.slack_chat import SlackChat, web_client
from tests.bot.reminders.test_outbox import _sender_env, approved, mail_env, smtp, states

__all__ = ["mail_env", "smtp"]  # fixtures


class Boom(Exception):
    """Anything that ends a run early: a database error, a provider's bug, a kill."""


def open_escalations(runtime: Runtime) -> list[Escalation]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Escalation).where(Escalation.state == "open")))


def test_a_send_found_dead_is_with_a_person_even_when_the_run_then_fails(
    mail_env: Any,
    runtime: Runtime,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reminder 2 was left `sending` by a dead worker; the run that finds it fails at its first
    send, before the finance channel is told. Customer 2's escalation says it may or may not
    have gone out, and the sweep posts it to Slack."""
    approved(mail_env, runtime, tmp_path, customers=2)
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == 2)
            .values(state="sending", updated_at=runtime.clock.now() - timedelta(hours=1))
        )
    from integrations.email_out import SmtpSender

    def fails(self: SmtpSender, message: Outgoing) -> Delivery:
        raise Boom

    monkeypatch.setattr(SmtpSender, "send", fails)
    with pytest.raises(Boom):
        mail_env("send")
    assert states(runtime)[2] == "unknown"

    [escalation] = open_escalations(runtime)
    assert (escalation.customer_id, escalation.reminder_id) == (2, 2)
    assert escalation.reason == SEND_UNKNOWN
    assert escalation.detail is not None
    assert escalation.detail.startswith("reminder 2 (the sender stopped while sending it).")
    assert "Check the sent mailbox" in escalation.detail

    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    assert posting.post_new(runtime, chat, "C0ESCALATE") == [escalation.id]
    [parent] = [m for m in slack_api.calls("chat.postMessage") if not m.get("thread_ts")]
    assert parent["channel"] == "C0ESCALATE"
    card = json.dumps(parent["blocks"])
    assert "a message may or may not have gone out" in card
    assert "reminder 2 (the sender stopped while sending it)" in card


def test_a_provider_that_never_answered_is_with_a_person_even_when_the_run_then_fails(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The first message is taken with no answer (`unknown`), the second send raises: the
    lane stores the first result as it fails, with customer 1's escalation."""
    from bot.reminders.sending import flush

    approved(mail_env, runtime, tmp_path, customers=2)
    worker = _sender_env(runtime, database_url)

    class NoAnswerThenBoom:
        def __enter__(self) -> NoAnswerThenBoom:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            if message.reminder_id == 1:
                return Delivery("unknown", error="no answer after the message was handed over")
            raise Boom

    with pytest.raises(Boom):
        flush(worker, {"email": NoAnswerThenBoom()})
    worker.close()
    assert states(runtime) == {1: "unknown", 2: "sending"}
    [escalation] = open_escalations(runtime)
    assert (escalation.customer_id, escalation.reminder_id) == (1, 1)
    assert escalation.reason == SEND_UNKNOWN
    assert escalation.detail == (
        "reminder 1 (no answer after the message was handed over). Check the sent mailbox; if "
        "it is not there, write to them with Reply: it is never sent again by itself."
    )


def test_a_text_in_doubt_points_at_the_sms_log_and_keeps_the_stop_asked_for() -> None:
    said = detail(7, "sms", "the sender stopped while sending it", stop="paid")
    assert said == (
        "reminder 7 (the sender stopped while sending it). A stop was asked for after it was "
        "claimed (paid): it was probably not handed over. Check the SMS provider's message log; "
        "if it is not there, write to them with Reply: it is never sent again by itself."
    )


def test_the_stop_is_named_in_words_not_by_its_code() -> None:
    said = detail(7, "email", "no answer", stop="due_date_changed")
    assert "(the invoice's due date changed)" in said and "due_date_changed" not in said
