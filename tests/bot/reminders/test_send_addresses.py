"""An address stored as the ledger once gave it, with letters outside ASCII: an internationalised
domain is sent to in its ASCII (IDNA) form; an address that cannot be written at all fails once
and is marked unusable, so it is not tried (and reported) again every day."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from tests.bot.reminders.test_outbox import approved, mail_env, smtp, states
from tests.support.smtp_server import SmtpServer

__all__ = ["mail_env", "smtp"]  # fixtures


def _stored_as(runtime: Runtime, address: str) -> None:
    with runtime.writing() as session:
        session.execute(update(Contact).values(email=address))


def test_an_internationalised_domain_is_sent_to_in_its_ascii_form(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    _stored_as(runtime, "ana@bücher.example")
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert states(runtime) == {1: "sent"}
    assert smtp.mailbox.messages[0]["To"] == "Maria Garcia <ana@xn--bcher-kva.example>"


def test_an_address_that_cannot_be_written_fails_once_and_is_marked_unusable(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    _stored_as(runtime, "josé@example.com")
    assert "failed 1" in mail_env("send").stdout
    assert smtp.mailbox.messages == []
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        contact = session.scalars(select(Contact)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert reminder is not None and reminder.state == "failed"
    assert contact.email_unusable_at is not None
    assert "josé@example.com" in (reminder.error or "") and "before the @" in (reminder.error or "")
    assert (escalation.reason, escalation.state) == ("send_failed", "open")
