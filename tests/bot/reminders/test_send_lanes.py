"""Sending in several lanes (ARBOT_SEND_CONCURRENCY): what each lane saw reaches the run's report
and the finance channel as it would from one lane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import Runtime
from bot.ledger.accounts import cancel_waiting
from tests.bot.reminders.test_outbox import approved, mail_env, smtp, states
from tests.support.smtp_server import SmtpServer

__all__ = ["mail_env", "smtp"]  # fixtures


def test_a_reminder_sent_after_a_payment_in_one_of_several_lanes_is_told_to_the_finance_channel(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
        "ARBOT_SEND_CONCURRENCY": "2",
    }.items():
        monkeypatch.setenv(name, value)
    approved(mail_env, runtime, tmp_path, customers=4)
    mailbox = smtp.mailbox
    taken = type(mailbox).handle_DATA

    async def paid_while_the_server_has_it(server: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos == ["ap@c1.example"]:  # customer 1 pays while its mail is taken
            with runtime.writing() as writing:
                cancel_waiting(writing, 1, "paid", runtime.clock.now())
        return await taken(mailbox, server, session, envelope)

    monkeypatch.setattr(mailbox, "handle_DATA", paid_while_the_server_has_it)
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 4" in result.stdout
    assert set(states(runtime).values()) == {"sent"}
    texts = [c.get("text", "") for c in slack_api.calls("chat.postMessage")]
    assert [text for text in texts if "after a stop was asked" in text] == [
        "Reminder 1 went out after a stop was asked (paid): the provider already had it. It is "
        "in its customer's escalation, for a person."
    ]


def test_every_field_of_a_lanes_report_reaches_the_runs_report() -> None:
    from dataclasses import fields

    from bot.reminders.outbox import FlushReport
    from bot.reminders.sending import _merge

    def filled(reminder_id: int) -> FlushReport:
        lane = FlushReport()
        for one in fields(FlushReport):
            value = getattr(lane, one.name)
            if isinstance(value, list):
                value.append(reminder_id)
            elif isinstance(value, dict):
                value[reminder_id] = "paid"
            else:
                setattr(lane, one.name, f"outage in lane {reminder_id}")
        return lane

    report = FlushReport()
    _merge(report, filled(1))
    _merge(report, filled(2))
    for one in fields(FlushReport):
        value = getattr(report, one.name)
        if isinstance(value, list):
            assert value == [1, 2], one.name
        elif isinstance(value, dict):
            assert value == {1: "paid", 2: "paid"}, one.name
        else:
            assert value == "outage in lane 1", one.name
