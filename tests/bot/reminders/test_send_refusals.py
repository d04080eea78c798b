"""A refusal is charged to whom it concerns: a relay or policy refusal is our account's (the run
stops and every reminder waits untouched), a bad mailbox is the customer's address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from tests.bot.reminders.test_outbox import approved, mail_env, smtp, states
from tests.support.smtp_server import SmtpServer

__all__ = ["mail_env", "smtp"]  # fixtures


def _nothing_charged(runtime: Runtime) -> None:
    assert set(states(runtime).values()) == {"approved"}
    with runtime.sessions() as session:
        assert set(session.scalars(select(Reminder.attempts))) == {0}
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        assert session.scalars(select(Escalation)).all() == []


def test_a_relay_refusing_every_recipient_stops_the_run_and_leaves_the_addresses_usable(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    with runtime.sessions() as session:
        addresses = list(session.scalars(select(Contact.email)))
    for address in addresses:
        smtp.mailbox.refuse[address or ""] = "550 5.7.1 Relaying denied: authenticate first"
    result = mail_env("send")
    assert result.code == 1
    assert "sending stopped" in result.stderr and "5.7.1 Relaying denied" in result.stderr
    assert "SMTP_USER" in result.stderr  # what to check
    _nothing_charged(runtime)
    smtp.mailbox.refuse.clear()
    assert "Sent 3" in mail_env("send").stdout


def test_a_policy_refusal_of_the_data_command_stops_the_run(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=2)
    smtp.mailbox.refuse_data = ["554 5.7.1 Message refused by policy: authentication required"]
    result = mail_env("send")
    assert result.code == 1 and "sending stopped" in result.stderr
    _nothing_charged(runtime)


@pytest.mark.parametrize(
    ("reply", "unusable"),
    [
        ("550 5.1.1 No such user here", True),
        ("553 5.1.3 Bad recipient address syntax", True),
        ("550 No such user here", True),  # no enhanced code: the basic code decides, as before
        ("552 5.2.2 Mailbox full", False),
        ("550 5.2.1 Mailbox disabled, not accepting messages", False),
    ],
)
def test_only_a_bad_mailbox_marks_the_address_unusable(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    reply: str,
    unusable: bool,
) -> None:
    approved(mail_env, runtime, tmp_path)
    smtp.mailbox.refuse["ap@c1.example"] = reply
    assert "failed 1" in mail_env("send").stdout
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert (contact.email_unusable_at is not None) is unusable
    assert escalation.reason == "send_failed"
