"""Sending in several lanes (ARBOT_SEND_CONCURRENCY): what each lane saw reaches the run's report
and the finance channel as it would from one lane."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.accounts import cancel_waiting
from tests.bot.reminders.test_outbox import _sender_env, approved, mail_env, smtp, states
from tests.handlers.webhooks.test_sms_and_webhooks import twilio
from tests.support.fake_twilio import SID, TOKEN, FakeTwilio
from tests.support.ledger_files import a_week_late, row, write
from tests.support.smtp_server import SmtpServer

__all__ = ["mail_env", "smtp", "twilio"]  # fixtures


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


def test_with_twilio_set_up_emails_and_texts_still_go_in_several_lanes(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    twilio: FakeTwilio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+13125550000",
        "TWILIO_API_URL": twilio.url,
        "ARBOT_SEND_CONCURRENCY": "3",
        "ARBOT_SEND_BATCH": "1",  # each lane takes one reminder at a time
    }.items():
        monkeypatch.setenv(name, value)
    smtp.mailbox.slow_data_seconds = 0.05  # while one lane waits on its email, the others go on
    rows = a_week_late(20) + [  # transactional customers due today get a text first
        row(
            customer_id=f"T-{n}",
            customer_name=f"Texted {n}",
            invoice_number=f"T-{n}",
            tier="transactional",
            phone="+13125550142",
            sms_consent="true",
            issue_date="2026-01-01",
            due_date="2026-03-16",
        )
        for n in range(1, 21)
    ]
    assert mail_env("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert mail_env("plan").code == 0
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="approved", approved_by="U0APPROVER"))
        channels = Counter(session.scalars(select(Reminder.channel)))
    assert channels == {"email": 20, "sms": 20}
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 40" in result.stdout
    assert set(states(runtime).values()) == {"sent"}
    assert len(smtp.mailbox.messages) == 20 and len(twilio.messages) == 20
    assert smtp.mailbox.connections >= 2  # each lane on a connection of its own


def test_a_twilio_sender_opens_another_on_a_client_of_its_own(twilio: FakeTwilio) -> None:
    from integrations.base.outbound import Outgoing
    from integrations.twilio_sms import TwilioSender

    text = Outgoing(
        1,
        "sms",
        "+13125550142",
        None,
        None,
        "B",
        None,
        "Hi. Reply STOP.",
        None,
        None,
        None,
        None,
        None,
    )
    with TwilioSender(twilio.url, SID, TOKEN, "+13125550000", None) as first:
        with first.another() as second:
            assert second is not first
            assert second.send(text).status == "sent"
        assert first.send(text).status == "sent"  # closing the other left this one's client open
    assert len(twilio.messages) == 2


class OneConnectionOnly:
    """A sender that cannot open another like itself (no `another`)."""

    def __enter__(self) -> OneConnectionOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Any) -> Any:
        from integrations.base.outbound import Delivery

        return Delivery("sent", provider_id=f"p-{message.reminder_id}")


def test_a_sender_that_cannot_open_another_leaves_email_its_lanes(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.reminders.sending import flush
    from integrations.email_out import SmtpSender

    approved(mail_env, runtime, tmp_path, customers=12)
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", "3")
    monkeypatch.setenv("ARBOT_SEND_BATCH", "1")
    smtp.mailbox.slow_data_seconds = 0.05
    worker = _sender_env(runtime, database_url)
    try:
        email = SmtpSender("127.0.0.1", smtp.port, None, None, False, timeout=5)
        report = flush(worker, {"email": email, "sms": OneConnectionOnly()})
    finally:
        worker.close()
    assert sorted(report.sent) == list(range(1, 13))
    assert smtp.mailbox.connections >= 2


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_an_email_relay_that_is_down_stops_email_only_and_the_texts_go(
    mail_env: Any,
    runtime: Runtime,
    twilio: FakeTwilio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: str,
) -> None:
    for name, value in {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+13125550000",
        "TWILIO_API_URL": twilio.url,
        "ARBOT_SEND_CONCURRENCY": concurrency,
        "SMTP_PORT": "1",  # our relay is down
    }.items():
        monkeypatch.setenv(name, value)
    rows = a_week_late(3) + [
        row(
            customer_id=f"T-{n}",
            customer_name=f"Texted {n}",
            invoice_number=f"T-{n}",
            tier="transactional",
            phone="+13125550142",
            sms_consent="true",
            issue_date="2026-01-01",
            due_date="2026-03-16",
        )
        for n in range(1, 4)
    ]
    assert mail_env("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert mail_env("plan").code == 0
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="approved", approved_by="U0APPROVER"))
    result = mail_env("send")
    assert result.code == 1 and "cannot connect to the SMTP server" in result.stderr
    assert "Sent 3" in result.stdout
    assert len(twilio.messages) == 3
    with runtime.sessions() as session:
        left = session.execute(select(Reminder.channel, Reminder.state, Reminder.attempts)).all()
    assert sorted(left) == [("email", "approved", 0)] * 3 + [("sms", "sent", 1)] * 3
