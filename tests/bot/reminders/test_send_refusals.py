"""A refusal is charged to whom it concerns: a relay refusal is our account's (the run stops and
every reminder waits untouched), a policy refusal of one message at DATA is that message's (a
second in the run is our account's), a bad mailbox is the customer's address."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from tests.bot.reminders.test_outbox import approved, mail_env, smtp, states
from tests.conftest import NOW
from tests.support.smtp_server import PASSWORD, USER, SmtpServer

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


def _reminders(runtime: Runtime) -> list[tuple[str, int, str | None]]:
    with runtime.sessions() as session:
        rows = session.execute(select(Reminder.state, Reminder.attempts, Reminder.error)).all()
    return sorted(((s, a, e) for s, a, e in rows), key=lambda one: (one[0], one[1], one[2] or ""))


@pytest.mark.parametrize(
    "refusal",
    ["refuse_message", "refuse_data"],  # after the message was read, or to DATA itself
)
def test_a_policy_refusal_of_one_message_fails_that_message_and_the_others_go(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, refusal: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    setattr(smtp.mailbox, refusal, ["550 5.7.1 Message rejected: content policy"])
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 2" in result.stdout and "failed 1" in result.stdout
    assert len(smtp.mailbox.messages) == 2
    assert _reminders(runtime) == [
        ("failed", 1, "SMTP 550 5.7.1 Message rejected: content policy"),  # the relay's words
        ("sent", 1, None),
        ("sent", 1, None),
    ]
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        escalation = session.scalars(select(Escalation)).one()  # a person sees it
    assert escalation.reason == "send_failed"
    assert escalation.detail == "SMTP 550 5.7.1 Message rejected: content policy"


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_a_second_policy_refusal_in_one_run_stops_email_as_our_account(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: str,
) -> None:
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", concurrency)
    approved(mail_env, runtime, tmp_path, customers=4)
    dmarc = "550 5.7.26 Unauthenticated email from brightwater.example is not accepted"
    smtp.mailbox.refuse_message = [dmarc, dmarc]
    result = mail_env("send")
    assert result.code == 1
    assert "sending stopped" in result.stderr and "5.7.26 Unauthenticated" in result.stderr
    assert "ARBOT_FROM_EMAIL" in result.stderr  # what to check
    left = _reminders(runtime)
    assert [one[:2] for one in left if one[0] == "failed"] == [("failed", 1)]  # the first only
    second = [(attempts, error) for state, attempts, error in left if state == "approved" and error]
    assert len(second) == 1 and second[0][0] == 0  # approved again, no try charged
    assert "5.7.26" in (second[0][1] or "")
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        assert len(session.scalars(select(Escalation)).all()) == 1
    assert "Sent" in mail_env("send").stdout  # the relay takes mail again: the rest go
    assert sorted(state for state, _, _ in _reminders(runtime)) == ["failed"] + ["sent"] * 3


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_a_relay_refusing_our_mail_by_policy_fails_one_reminder_in_all_not_one_a_run(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: str,
) -> None:
    _finance_channel(monkeypatch, slack_api)
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", concurrency)
    approved(mail_env, runtime, tmp_path, customers=4)
    dmarc = "550 5.7.26 Unauthenticated email from brightwater.example is not accepted"
    smtp.mailbox.refuse_message = [dmarc] * 20  # every message, run after run
    for _ in range(2):  # `arbot serve` sends every minute
        result = mail_env("send")
        assert result.code == 1
        assert "sending stopped" in result.stderr and "5.7.26 Unauthenticated" in result.stderr
        assert "ARBOT_FROM_EMAIL" in result.stderr
    left = _reminders(runtime)
    assert [one[0] for one in left].count("failed") == 1  # the first run's first, and only it
    assert sorted(state for state, _, _ in left) == ["approved"] * 3 + ["failed"]
    assert [attempts for state, attempts, _ in left if state == "approved"] == [0, 0, 0]
    with runtime.sessions() as session:
        assert len(session.scalars(select(Escalation)).all()) == 1
    if concurrency == "1":  # the next run meets it first at the reminder it stopped at
        [told] = _stopped_posts(slack_api)
        assert "5.7.26" in told and "ARBOT_FROM_EMAIL" in told
    smtp.mailbox.refuse_message = []  # the domain passes DMARC again: the rest go
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert sorted(state for state, _, _ in _reminders(runtime)) == ["failed"] + ["sent"] * 3


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


def _finance_channel(monkeypatch: pytest.MonkeyPatch, slack_api: Any) -> None:
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)


def _stopped_posts(slack_api: Any) -> list[str]:
    texts = [c.get("text", "") for c in slack_api.calls("chat.postMessage")]
    return [text for text in texts if text.startswith("Sending stopped")]


def test_a_relay_that_is_down_for_hours_stops_each_run_charges_no_try_and_is_told_once(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _finance_channel(monkeypatch, slack_api)
    approved(mail_env, runtime, tmp_path, customers=3)
    monkeypatch.setenv("SMTP_PORT", "1")  # our relay is down: nothing listens there
    at = NOW
    for wait in (0, 1, 5, 15, 60, 60, 60):  # past every retry the backoff would have made
        at += timedelta(minutes=wait)
        monkeypatch.setenv("ARBOT_NOW", at.isoformat())
        result = mail_env("send")
        assert result.code == 1
        assert "sending stopped: cannot connect to the SMTP server" in result.stderr
        assert "SMTP_HOST" in result.stderr
        _nothing_charged(runtime)
    [told] = _stopped_posts(slack_api)
    assert "cannot connect to the SMTP server" in told
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    assert "Sent 3" in mail_env("send").stdout


@pytest.mark.parametrize("fault", ["no login offered", "certificate not trusted", "no STARTTLS"])
def test_a_relay_we_cannot_sign_in_to_stops_the_run_and_charges_no_try(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    approved(mail_env, runtime, tmp_path, customers=2)
    tls = SmtpServer(tls=True).start()
    try:
        if fault == "no login offered":  # the plain relay offers no AUTH
            monkeypatch.setenv("SMTP_USER", USER)
            monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        elif fault == "certificate not trusted":  # its certificate is not signed by a known CA
            monkeypatch.setenv("SMTP_PORT", str(tls.port))
            monkeypatch.setenv("SMTP_STARTTLS", "true")
            monkeypatch.setenv("SMTP_USER", USER)
            monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        else:  # STARTTLS asked of a relay that does not offer it
            monkeypatch.setenv("SMTP_STARTTLS", "true")
        for _ in range(2):
            result = mail_env("send")
            assert result.code == 1 and "sending stopped" in result.stderr
            _nothing_charged(runtime)
    finally:
        tls.stop()
    assert smtp.mailbox.messages == [] and tls.mailbox.messages == []
