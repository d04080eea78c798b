"""Sending: exactly once, inside the send window, never after a payment or an opt-out, through a
real SMTP server on loopback."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Contact, Customer, Escalation, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import verify_token
from tests.support.ledger_files import a_week_late, write
from tests.support.smtp_server import SmtpServer

TODAY = date(2026, 3, 16)
SECRET = "test-secret-key"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_env(cli: Any, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "ARBOT_FROM_EMAIL": "ar@brightwater.example",
        "ARBOT_SECRET_KEY": SECRET,
        "ARBOT_BUSINESS_NAME": "Brightwater Supply Co.",
    }.items():
        monkeypatch.setenv(name, value)
    return cli


def approved(cli: Any, runtime: Runtime, tmp_path: Path, customers: int = 1, **fields: str) -> None:
    rows = a_week_late(customers, **fields)
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert cli("plan").code == 0
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.state == "planned")
            .values(state="approved", approved_by="U0APPROVER", approved_at=runtime.clock.now())
        )


def states(runtime: Runtime) -> dict[int, str]:
    with runtime.sessions() as session:
        return dict(session.execute(select(Reminder.id, Reminder.state)).all())


def test_an_approved_reminder_is_sent_once_with_every_header(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 1" in result.stdout
    assert mail_env("send").code == 0  # a second run sends nothing more
    assert len(smtp.mailbox.messages) == 1
    message = smtp.mailbox.messages[0]
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.state == "sent" and reminder.sent_at is not None
    assert message["Message-ID"] == reminder.message_id
    assert message["From"] == '"Brightwater Supply Co." <ar@brightwater.example>'
    assert message["To"] == "Maria Garcia <ap@c1.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    reply_token = message["Reply-To"].split("+r.", 1)[1].split("@", 1)[0]
    assert verify_token(SECRET, reply_token, "reply") == 1
    assert "mailto:ar+u.1." in message["List-Unsubscribe"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_payload(decode=True).decode() for part in message.get_payload())
    assert "$1,200.00" in text and "$1,200.00" in html
    assert "stop receiving these reminders by email" in text
    assert "<p" in html


def test_a_payment_between_approval_and_send_cancels_it(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    with runtime.writing() as session:
        session.execute(update(Invoice).values(balance=Decimal(0), status="paid"))
    result = mail_env("send")
    assert "reminder 1 cancelled: paid" in result.stdout
    assert smtp.mailbox.messages == []
    assert states(runtime) == {1: "cancelled"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("dispute", "disputed"),
        ("opt_out", "opted_out"),
        ("pause", "paused"),
        ("partial_payment", "superseded"),
        # a bank payment from the customer that a person must place: it may pay the invoice
        ("payment_in_review", "payment_in_review"),
    ],
)
def test_anything_that_changed_since_approval_cancels_the_send(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, change: str, reason: str
) -> None:
    approved(mail_env, runtime, tmp_path)
    now = runtime.clock.now()
    if change == "payment_in_review":  # more than Customer 1 owes: no match, a review
        bank = tmp_path / "bank.csv"
        bank.write_text(
            "date,amount,currency,reference,payer\n2026-03-13,2000.00,USD,,Customer 1\n"
        )
        assert mail_env("import-payments", str(bank)).code == 0
    with runtime.writing() as session:
        if change == "dispute":
            session.execute(update(Invoice).values(disputed=True))
        elif change == "opt_out":
            session.execute(update(Contact).values(email_opted_out_at=now))
        elif change == "pause":
            session.execute(update(Customer).values(paused_until=now + timedelta(days=3)))
    if change == "partial_payment":
        later = now + timedelta(minutes=5)
        from bot.core import audit

        with runtime.writing() as session:
            session.execute(update(Invoice).values(balance=Decimal("100.00")))
            audit.record(session, later, "invoice.balance_changed", customer_id=1, invoice_id=1)
    assert f"cancelled: {reason}" in mail_env("send").stdout
    assert smtp.mailbox.messages == []


def test_nothing_goes_out_outside_the_contacts_send_window(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    approved(mail_env, runtime, tmp_path, timezone="America/Los_Angeles")  # 07:00 there now
    with runtime.writing() as session:  # as if approved for right now
        session.execute(update(Reminder).values(send_after=runtime.clock.now()))
    result = mail_env("send")
    assert "not yet in the send window 1" in result.stdout
    assert smtp.mailbox.messages == []
    with runtime.sessions() as session:
        send_after = session.scalar(select(Reminder.send_after))
    assert send_after == datetime(2026, 3, 16, 16, tzinfo=UTC)  # 09:00 in Los Angeles
    monkeypatch.setenv("ARBOT_NOW", "2026-03-16T16:00:00+00:00")
    assert "Sent 1" in mail_env("send").stdout
    assert len(smtp.mailbox.messages) == 1


def test_a_reminder_left_sending_by_a_crash_becomes_unknown_and_is_never_resent(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    with runtime.writing() as session:
        session.execute(
            update(Reminder).values(
                state="sending", updated_at=runtime.clock.now() - timedelta(hours=1)
            )
        )
    result = mail_env("send")
    assert "check by hand whether these went out: [1]" in result.stdout
    assert states(runtime) == {1: "unknown"}
    assert mail_env("send").code == 0
    assert smtp.mailbox.messages == []


def test_a_refused_address_fails_marks_the_address_and_escalates(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    smtp.mailbox.refuse["ap@c1.example"] = "550 5.1.1 No such user here"
    assert "failed 1" in mail_env("send").stdout
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        contact = session.scalars(select(Contact)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert reminder is not None and reminder.state == "failed" and "550" in (reminder.error or "")
    assert contact.email_unusable_at is not None
    assert (escalation.reason, escalation.state) == ("send_failed", "open")


def test_a_temporary_refusal_is_retried_later_and_then_sent(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    approved(mail_env, runtime, tmp_path)
    smtp.mailbox.refuse["ap@c1.example"] = "451 4.3.0 Try again later"
    assert "retrying 1" in mail_env("send").stdout
    assert states(runtime) == {1: "approved"}
    del smtp.mailbox.refuse["ap@c1.example"]
    assert "Sent 0" in mail_env("send").stdout  # the backoff has not passed yet
    monkeypatch.setenv("ARBOT_NOW", "2026-03-16T14:02:00+00:00")
    assert "Sent 1" in mail_env("send").stdout
    assert len(smtp.mailbox.messages) == 1


def test_an_smtp_server_that_is_down_stops_the_run_and_charges_no_try(
    mail_env: Any, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved(mail_env, runtime, tmp_path)
    monkeypatch.setenv("SMTP_PORT", "1")  # nothing listens there
    result = mail_env("send")
    assert result.code == 1 and "cannot connect to the SMTP server" in result.stderr
    assert states(runtime) == {1: "approved"}
    with runtime.sessions() as session:
        assert session.scalar(select(Reminder.attempts).where(Reminder.id == 1)) == 0


def test_sending_needs_a_sender_address_and_a_secret(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ARBOT_SECRET_KEY", SECRET)
    assert "set ARBOT_FROM_EMAIL" in cli("send").stderr
    monkeypatch.delenv("SMTP_HOST")
    assert "set SMTP_HOST" in cli("send").stderr


def test_the_outbox_folder_holds_real_eml_files(
    mail_env: Any, runtime: Runtime, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    outbox = tmp_path / "outbox"
    assert mail_env("send", "--outbox", str(outbox)).code == 0
    import email

    message = email.message_from_bytes((outbox / "reminder-1.eml").read_bytes())
    assert message["Subject"] and message.get_content_type() == "multipart/alternative"


@pytest.mark.postgres
def test_two_workers_on_postgres_never_send_the_same_reminder(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is the PostgreSQL path")
    approved(mail_env, runtime, tmp_path, customers=40)
    from bot.core.runtime import start
    from bot.core.settings import load_settings
    from bot.reminders.sending import flush
    from integrations.email_out import SmtpSender

    settings = load_settings(
        env_file=None,
        database_url=database_url,
        from_email="ar@b.example",
        secret_key=SECRET,
        timezone="America/New_York",
    )
    barrier = threading.Barrier(2)

    def worker() -> None:
        rt = start(settings, clock=runtime.clock)
        barrier.wait()
        flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})
        rt.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = smtp.mailbox.message_ids()
    assert len(ids) == 40
    assert max(Counter(ids).values()) == 1
    assert set(states(runtime).values()) == {"sent"}


@pytest.mark.slow  # an `arbot serve` process
def test_arbot_serve_runs_the_send_worker(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, database_url: str
) -> None:
    import os
    import socket
    import subprocess
    import sys

    from tests.support.slack_requests import PROCESS_PATIENCE, wait_for

    if not database_url.startswith("sqlite"):
        pytest.skip("one database is enough for this process test")
    approved(mail_env, runtime, tmp_path)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    # Slack at a closed local port: nothing in a test reaches the internet, and the scheduled
    # jobs' Slack calls fail at once instead of waiting on a network that is not there.
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": "http://127.0.0.1:9/",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: smtp.mailbox.messages, timeout=PROCESS_PATIENCE)
    finally:
        server.terminate()
        server.wait(timeout=PROCESS_PATIENCE)
    assert len(smtp.mailbox.messages) == 1
    assert states(runtime) == {1: "sent"}


def test_after_sending_slack_cards_are_redrawn_and_unknowns_are_raised_with_a_person(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json as _json

    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    approved(mail_env, runtime, tmp_path, customers=2)  # `plan` posted both cards
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.id == 2)
            .values(state="sending", updated_at=runtime.clock.now() - timedelta(hours=1))
        )
    assert "Sent 1" in mail_env("send").stdout
    notices = [
        c for c in slack_api.calls("chat.postMessage") if "may or may not" in c.get("text", "")
    ]
    assert len(notices) == 1 and "[2]" in notices[0]["text"]
    card = _json.dumps(list(slack_api.messages.values())[1]["blocks"])
    assert "Sent" in card


def _sender_env(runtime: Runtime, database_url: str) -> Any:
    from bot.core.runtime import start
    from bot.core.settings import load_settings

    settings = load_settings(
        env_file=None,
        database_url=database_url,
        from_email="ar@b.example",
        secret_key=SECRET,
        timezone="America/New_York",
    )
    return start(settings, clock=runtime.clock)


def test_no_answer_after_data_is_unknown_and_never_sent_again(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, database_url: str
) -> None:
    from bot.reminders.sending import flush
    from integrations.email_out import SmtpSender

    approved(mail_env, runtime, tmp_path)
    # The server answers DATA only after the sender's timeout; every step before it must answer
    # within the timeout, so it is not tight (a loaded machine must not time out at RCPT).
    smtp.mailbox.slow_data_seconds = 2
    worker = _sender_env(runtime, database_url)
    report = flush(
        worker, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False, timeout=1)}
    )
    assert report.unknown == [1] and report.retrying == []
    smtp.mailbox.slow_data_seconds = 0
    assert "Sent 0" in mail_env("send").stdout
    from tests.support.slack_requests import wait_for

    wait_for(lambda: len(smtp.mailbox.messages) == 1)
    assert states(runtime) == {1: "unknown"}
    worker.close()


def test_a_refused_sender_address_stops_the_run_and_loses_nothing(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    smtp.mailbox.refuse_sender = "553 5.7.1 Sender address rejected: not owned by you"
    result = mail_env("send")
    assert result.code == 1
    assert "sending stopped: the SMTP server refused our sender address" in result.stderr
    assert set(states(runtime).values()) == {"approved"}
    with runtime.sessions() as session:
        assert session.scalars(select(Escalation)).all() == []
        assert session.scalar(select(Reminder.attempts).where(Reminder.id == 1)) == 0
    smtp.mailbox.refuse_sender = None
    assert "Sent 3" in mail_env("send").stdout


def test_a_refused_data_command_puts_that_reminder_back_and_sends_the_rest(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Not an outage: the next message on the same connection is not refused as a nested MAIL."""
    approved(mail_env, runtime, tmp_path, customers=3)
    smtp.mailbox.refuse_data = ["451 4.7.1 Try again later"]
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 2" in result.stdout
    assert sorted(states(runtime).values()) == ["approved", "sent", "sent"]
    assert len(smtp.mailbox.messages) == 2


def test_the_envelope_sender_is_a_per_reminder_bounce_address(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    assert mail_env("send").code == 0
    envelope = smtp.mailbox.envelopes[0]
    assert envelope.startswith("bounce+1.") and envelope.endswith("@brightwater.example")
    assert verify_token(SECRET, envelope.split("+", 1)[1].split("@")[0], "bounce") == 1


def test_each_send_is_checked_against_the_window_at_its_own_time(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    from bot.core.clock import FixedClock
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path, customers=6)
    clock = FixedClock(datetime(2026, 3, 16, 21, 40, tzinfo=UTC))  # 16:40 in Chicago (CDT)
    with runtime.writing() as session:
        session.execute(update(Reminder).values(send_after=clock.now()))
    worker = _sender_env(runtime, database_url)
    worker.clock = clock

    class SlowSender:  # each send takes five minutes of the clock
        def __enter__(self) -> SlowSender:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            clock.advance(timedelta(minutes=5))
            return Delivery("sent", provider_id="x")

    report = flush(worker, {"email": SlowSender()})
    assert len(report.sent) == 4  # 16:40, 16:45, 16:50, 16:55; the window closes at 17:00
    assert len(report.rescheduled) == 2
    worker.close()


def test_a_result_for_a_reminder_no_longer_sending_writes_nothing(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path)
    worker = _sender_env(runtime, database_url)

    class Meanwhile:  # another worker marks it unknown while this one is sending
        def __enter__(self) -> Meanwhile:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            with runtime.writing() as session:
                session.execute(update(Reminder).values(state="unknown"))
            return Delivery("permanent", error="550 no such user", address_unusable=True)

    report = flush(worker, {"email": Meanwhile()})
    assert report.failed == []
    with runtime.sessions() as session:
        assert session.scalars(select(Escalation)).all() == []
        assert session.scalar(select(Contact.email_unusable_at)) is None
    assert states(runtime) == {1: "unknown"}
    worker.close()


def test_a_promise_recorded_after_approval_cancels_the_send(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    with runtime.writing() as session:
        session.execute(update(Invoice).values(promise_date=date(2026, 3, 20)))
    assert "cancelled: promised" in mail_env("send").stdout
    assert smtp.mailbox.messages == []


@pytest.mark.parametrize("value", ["\u0661.abc", "\u00b2.x", "1." + "\u00e9" * 20, "", "abc"])
def test_malformed_tokens_do_not_verify(value: str) -> None:
    assert verify_token(SECRET, value, "unsubscribe") is None


def test_a_reminder_can_go_out_as_the_account_owner(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBOT_OWNER_EMAILS", "U07DANA01=dana@brightwater.example")
    approved(mail_env, runtime, tmp_path)  # the ledger row names U07DANA01 as the owner
    assert "Sent 1" in mail_env("send").stdout
    message = smtp.mailbox.messages[0]
    assert message["From"] == '"Brightwater Supply Co." <dana@brightwater.example>'
    assert message["Reply-To"].startswith("ar+r.1.")
    assert smtp.mailbox.envelopes[0].startswith("bounce+1.")


def test_a_reminder_that_can_never_find_sending_hours_goes_to_a_person(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    with runtime.writing() as session:  # moved to Berlin, but the phone is in San Francisco
        session.execute(update(Contact).values(timezone="Europe/Berlin", phone="+14155550100"))
        session.execute(update(Customer).values(timezone="Europe/Berlin"))
    assert "cancelled: no_send_window" in mail_env("send").stdout
    with runtime.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.reason == "no_send_window"
    assert smtp.mailbox.messages == []


def test_the_date_header_comes_from_arbots_clock(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    from email.utils import parsedate_to_datetime

    approved(mail_env, runtime, tmp_path)
    assert mail_env("send").code == 0
    assert parsedate_to_datetime(smtp.mailbox.messages[0]["Date"]) == runtime.clock.now()


def test_starttls_with_a_login_and_a_refused_login_stops_the_run(
    mail_env: Any, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.smtp_server import PASSWORD, TLS, USER

    server = SmtpServer(tls=True).start()
    try:
        for name, value in {
            "SMTP_PORT": str(server.port),
            "SMTP_STARTTLS": "true",
            "SMTP_USER": USER,
            "SMTP_PASSWORD": "wrong",
            "SMTP_CA_FILE": str(TLS / "cert.pem"),
        }.items():
            monkeypatch.setenv(name, value)
        approved(mail_env, runtime, tmp_path)
        refused = mail_env("send")
        assert refused.code == 1 and "SMTP login refused" in refused.stderr
        assert states(runtime) == {1: "approved"}
        monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        assert "Sent 1" in mail_env("send").stdout
        assert len(server.mailbox.messages) == 1
    finally:
        server.stop()


def test_a_reminder_cancelled_after_its_batch_was_claimed_is_not_sent(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """A batch is claimed at once, but each reminder goes to `sending` only at its own turn, and
    only if it is still approved: a reply that lands while the batch is being sent wins."""
    from bot.ledger.accounts import cancel_waiting
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path, customers=3)
    worker = _sender_env(runtime, database_url)
    handed: list[int] = []

    class ReplyMeanwhile:  # while the first goes out, customer 3 replies
        def __enter__(self) -> ReplyMeanwhile:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            handed.append(message.reminder_id)
            if len(handed) == 1:
                with runtime.writing() as session:
                    cancel_waiting(session, 3, "replied", runtime.clock.now())
            return Delivery("sent", provider_id="x")

    report = flush(worker, {"email": ReplyMeanwhile()})
    worker.close()
    assert handed == [1, 2] and report.sent == [1, 2]
    assert states(runtime) == {1: "sent", 2: "sent", 3: "cancelled"}


class Recording:
    """A sender that keeps what it was handed; `another` opens one like it (a lane of its own).
    The `outage_at`-th message handed over, in any lane, meets an outage of the account."""

    def __init__(self, lanes: list[Recording], outage_at: int | None = None) -> None:
        self.lanes, self.outage_at = lanes, outage_at
        self.handed: list[int] = []
        lanes.append(self)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def another(self) -> Recording:
        return Recording(self.lanes, self.outage_at)

    def send(self, message: Any) -> Any:
        from integrations.base.outbound import Delivery

        self.handed.append(message.reminder_id)
        if sum(len(lane.handed) for lane in self.lanes) == self.outage_at:
            return Delivery("outage", error="SMTP login refused: 535")
        return Delivery("sent", provider_id=f"p-{message.reminder_id}")


def test_lanes_side_by_side_send_every_reminder_exactly_once(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str, monkeypatch: Any
) -> None:
    from bot.reminders.sending import flush

    approved(mail_env, runtime, tmp_path, customers=60)
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", "3")
    worker = _sender_env(runtime, database_url)
    assert worker.settings.send_concurrency == 3
    lanes: list[Recording] = []
    report = flush(worker, {"email": Recording(lanes)})
    worker.close()
    handed = [reminder_id for lane in lanes for reminder_id in lane.handed]
    assert len(lanes) == 3 and sum(1 for lane in lanes if lane.handed) >= 2
    assert sorted(handed) == list(range(1, 61)) == sorted(report.sent)
    assert set(states(runtime).values()) == {"sent"}


def test_an_outage_in_one_lane_stops_them_all_and_leaves_the_rest_approved(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str, monkeypatch: Any
) -> None:
    from bot.reminders.sending import flush

    approved(mail_env, runtime, tmp_path, customers=60)
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", "3")
    worker = _sender_env(runtime, database_url)
    lanes: list[Recording] = []
    report = flush(worker, {"email": Recording(lanes, outage_at=3)})
    worker.close()
    assert report.outage == "SMTP login refused: 535"
    by_state = Counter(states(runtime).values())
    assert by_state["sent"] == len(report.sent) and by_state["approved"] == 60 - len(report.sent)
    # Two went out before the outage, and each other lane had at most one in flight when it came
    # (without the stop, the other lanes would go on to send the other 57).
    assert len(report.sent) <= 2 + 2, len(report.sent)


def test_a_payment_after_the_batch_was_claimed_stops_its_reminder_at_its_turn(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """The batch goes to `sending` before its first message; a payment recorded while the first
    one goes out asks the third to stop, and it is cancelled at its turn instead of sent."""
    from bot.payments.record import record_payment
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path, customers=3)
    worker = _sender_env(runtime, database_url)
    handed: list[int] = []
    claimed: list[dict[int, str]] = []

    class PaymentMeanwhile:  # while the first goes out, customer 3 pays in full
        def __enter__(self) -> PaymentMeanwhile:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            handed.append(message.reminder_id)
            if len(handed) == 1:
                claimed.append(states(runtime))
                with runtime.writing() as session:
                    invoice = session.get(Invoice, 3)
                    assert invoice is not None and invoice.customer_id == 3
                    record_payment(
                        session,
                        source="bank",
                        external_id="P-3",
                        customer_id=3,
                        received_on=TODAY,
                        amount=invoice.balance,
                        currency=invoice.currency,
                        invoice_ids=[3],
                        now=runtime.clock.now(),
                    )
            return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    report = flush(worker, {"email": PaymentMeanwhile()})
    worker.close()
    assert claimed == [{1: "sending", 2: "sending", 3: "sending"}]  # one claim, before any send
    assert handed == [1, 2] and report.sent == [1, 2]
    assert report.cancelled == {3: "paid"}
    assert states(runtime) == {1: "sent", 2: "sent", 3: "cancelled"}
    with runtime.sessions() as session:
        stopped = session.get(Reminder, 3)
        assert stopped is not None and stopped.cancel_reason == "paid"
        assert session.scalars(select(Reminder.cancel_reason).where(Reminder.id != 3)).all() == [
            None,
            None,
        ]


class Died(BaseException):
    """The process dying in the middle of a send: nothing after it runs."""


def test_a_crash_mid_batch_leaves_its_reminders_to_a_person_and_sends_none_again(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str, monkeypatch: Any
) -> None:
    """A batch of five is `sending` before its first message; the worker dies at the third. The
    two sent, the one in hand and the two never handed over all stay `sending`, then become
    `unknown` for a person once their lease is over; none is ever handed over again."""
    from bot.core.clock import FixedClock
    from bot.core.models import Event
    from bot.reminders.outbox import LEASE
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path, customers=8)
    monkeypatch.setenv("ARBOT_SEND_BATCH", "5")
    worker = _sender_env(runtime, database_url)
    assert worker.settings.send_batch == 5
    handed: list[int] = []
    at_first: list[dict[int, str]] = []

    class DiesAtTheThird:
        def __enter__(self) -> DiesAtTheThird:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            if not handed:
                at_first.append(states(runtime))
            handed.append(message.reminder_id)
            if len(handed) == 3:
                raise Died
            return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    with pytest.raises(Died):
        flush(worker, {"email": DiesAtTheThird()})
    batch = {n: "sending" for n in range(1, 6)}
    assert at_first == [batch | {6: "approved", 7: "approved", 8: "approved"}]
    assert states(runtime) == batch | {6: "approved", 7: "approved", 8: "approved"}

    worker.clock = FixedClock(runtime.clock.now() + LEASE + timedelta(minutes=1))
    lanes: list[Recording] = []
    report = flush(worker, {"email": Recording(lanes)})
    worker.close()
    assert report.unknown == [1, 2, 3, 4, 5]
    assert lanes[0].handed == [6, 7, 8] and report.sent == [6, 7, 8]
    assert handed == [1, 2, 3]
    assert states(runtime) == {n: "unknown" for n in range(1, 6)} | {
        6: "sent",
        7: "sent",
        8: "sent",
    }
    with runtime.sessions() as session:
        told = session.scalars(
            select(Event.reminder_id).where(Event.kind == "reminder.unknown")
        ).all()
    assert sorted(told) == [1, 2, 3, 4, 5]


def test_an_unsubscribe_after_the_batch_was_claimed_stops_its_reminder_at_its_turn(
    mail_env: Any, runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """A one-click unsubscribe cancels no waiting reminder (the next claim finds the address
    opted out); one already `sending` and not yet handed over is stopped at its turn."""
    from bot.reminders.delivery import unsubscribe_email
    from bot.reminders.sending import flush
    from integrations.base.outbound import Delivery, Outgoing

    approved(mail_env, runtime, tmp_path, customers=3)
    worker = _sender_env(runtime, database_url)
    handed: list[int] = []

    class UnsubscribeMeanwhile:  # while the first goes out, customer 3's contact unsubscribes
        def __enter__(self) -> UnsubscribeMeanwhile:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def send(self, message: Outgoing) -> Delivery:
            handed.append(message.reminder_id)
            if len(handed) == 1:
                with runtime.writing() as session:
                    assert unsubscribe_email(session, 3, runtime.clock.now())
            return Delivery("sent", provider_id=f"p-{message.reminder_id}")

    report = flush(worker, {"email": UnsubscribeMeanwhile()})
    worker.close()
    assert handed == [1, 2] and report.sent == [1, 2]
    assert report.cancelled == {3: "opted_out"}
    assert states(runtime) == {1: "sent", 2: "sent", 3: "cancelled"}
