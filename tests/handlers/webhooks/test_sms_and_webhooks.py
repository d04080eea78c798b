"""SMS through a fake Twilio, delivery reports with X-Twilio-Signature, one-click unsubscribe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select, update

from bot.core.models import Contact, Escalation, Event, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from integrations.twilio_sms import segments, twilio_signature
from tests.support.fake_twilio import SID, TOKEN, FakeTwilio
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)
SECRET = "test-secret-key"
PUBLIC = "https://arbot.example.com"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def sms_env(cli: Any, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM": "+13125550000",
        "TWILIO_API_URL": twilio.url,
        "ARBOT_PUBLIC_URL": PUBLIC,
        "ARBOT_FROM_EMAIL": "ar@b.example",
        "ARBOT_SECRET_KEY": SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "1",
        "ARBOT_BUSINESS_NAME": "Brightwater Supply Co.",
    }.items():
        monkeypatch.setenv(name, value)
    return cli


def approved_sms(cli: Any, runtime: Runtime, tmp_path: Path, phone: str = "+13125550142") -> None:
    due = TODAY.isoformat()  # due today: transactional customers get a text first
    rows = [
        row(
            tier="transactional",
            phone=phone,
            sms_consent="true",
            issue_date="2026-01-01",
            due_date=due,
        )
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert cli("plan").code == 0
    with runtime.sessions() as session:
        assert session.scalar(select(Reminder.channel)) == "sms"
        assert session.scalar(select(Reminder.state)) == "approved"  # an auto-approve step


def test_a_text_goes_through_twilio_with_the_status_callback(
    sms_env: Any, runtime: Runtime, twilio: FakeTwilio, tmp_path: Path
) -> None:
    approved_sms(sms_env, runtime, tmp_path)
    result = sms_env("send")
    assert "Sent 1" in result.stdout, result.stdout + result.stderr
    message = twilio.messages[0]
    assert (message["To"], message["From"]) == ("+13125550142", "+13125550000")
    assert message["StatusCallback"] == (
        f"{PUBLIC}/webhooks/twilio/status?r={token(SECRET, 1, 'status')}"
    )
    assert "Reply STOP to opt out." in message["Body"]
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.state == "sent"
    assert reminder.provider_message_id == "SM" + "1".zfill(32)


@pytest.mark.parametrize(
    ("status", "code", "column", "state"),
    [
        (400, 21610, "sms_opted_out_at", "failed"),
        (400, 21211, "sms_unusable_at", "failed"),
        (500, None, None, "approved"),
        (429, 20429, None, "approved"),
    ],
)
def test_twilio_errors_map_to_the_right_outcome(
    sms_env: Any,
    runtime: Runtime,
    twilio: FakeTwilio,
    tmp_path: Path,
    status: int,
    code: int | None,
    column: str | None,
    state: str,
) -> None:
    approved_sms(sms_env, runtime, tmp_path)
    twilio.errors["+13125550142"] = (status, code, "refused")
    sms_env("send")
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        contact = session.scalars(select(Contact)).one()
        escalations = session.scalars(select(Escalation)).all()
    assert reminder is not None and reminder.state == state
    assert reminder.attempts == 1  # never retried straight away
    if column:
        assert getattr(contact, column) is not None
        assert len(escalations) == 1
    assert twilio.messages == []


def test_a_text_longer_than_two_segments_is_not_sent(
    sms_env: Any, runtime: Runtime, twilio: FakeTwilio, tmp_path: Path
) -> None:
    approved_sms(sms_env, runtime, tmp_path)
    with runtime.writing() as session:
        session.execute(update(Reminder).values(body_text="x" * 307 + " Reply STOP to opt out."))
    assert "failed 1" in sms_env("send").stdout
    assert twilio.messages == []


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 160, 1),
        ("ł" * 70, 1),
        ("ł" * 71, 2),
        ("€" * 80, 1),
        ("€" * 81, 2),
    ],
)
def test_sms_segments(text: str, count: int) -> None:
    assert segments(text) == count


def _status(served: Any, form: dict[str, str], signature: str | None = None) -> httpx.Response:
    url = f"{PUBLIC}/webhooks/twilio/status"
    return served.client.post(  # the served app's client (tests/support/slack_requests.py)
        served.url.replace("/slack/events", "/webhooks/twilio/status"),
        data=form,
        headers={"X-Twilio-Signature": signature or twilio_signature(TOKEN, url, form)},
    )


@pytest.fixture
def sent_sms(served: Any, slack_runtime: Runtime) -> Runtime:
    now = slack_runtime.clock.now()
    from bot.core.models import Customer

    with slack_runtime.writing() as session:
        customer = Customer(
            source="csv", external_id="C-1", name="Acme", created_at=now, updated_at=now
        )
        session.add(customer)
        session.flush()
        contact = Contact(
            customer_id=customer.id,
            phone="+13125550142",
            sms_consent=True,
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        session.flush()
        session.add(
            Reminder(
                customer_id=customer.id,
                contact_id=contact.id,
                channel="sms",
                plan_date=TODAY,
                step_key="due_today",
                state="sent",
                sent_at=now,
                provider_message_id="SM1",
                idempotency_key="k",
                created_at=now,
                updated_at=now,
            )
        )
    return slack_runtime


def test_a_signed_delivery_report_is_recorded_and_a_failure_escalates(
    sent_sms: Runtime, served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_sms.settings.twilio_auth_token = type(sent_sms.settings.slack_bot_token)(TOKEN)  # type: ignore[misc]
    sent_sms.settings.public_url = PUBLIC
    assert _status(served, {"MessageSid": "SM1", "MessageStatus": "delivered"}).status_code == 204
    failed = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30006"}
    assert _status(served, failed).status_code == 204
    assert _status(served, failed).status_code == 204  # Twilio retries: changes nothing more
    with sent_sms.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        contact = session.scalars(select(Contact)).one()
        escalations = session.scalars(select(Escalation)).all()
        kinds = session.scalars(select(Event.kind).where(Event.reminder_id == reminder.id)).all()
    assert reminder.state == "failed" and contact.sms_unusable_at is not None
    assert len(escalations) == 1
    # the escalation opens through escalations.service.open_or_add, which records it
    assert kinds == ["reminder.delivered", "reminder.failed", "escalation.opened"]


def test_a_delivery_report_with_a_bad_signature_is_refused(sent_sms: Runtime, served: Any) -> None:
    sent_sms.settings.twilio_auth_token = type(sent_sms.settings.slack_bot_token)(TOKEN)  # type: ignore[misc]
    sent_sms.settings.public_url = PUBLIC
    response = _status(
        served, {"MessageSid": "SM1", "MessageStatus": "failed"}, signature="Zm9yZ2Vk"
    )
    assert response.status_code == 401
    with sent_sms.sessions() as session:
        assert session.scalars(select(Reminder.state)).one() == "sent"


def test_one_click_unsubscribe_stops_email_to_that_address_only(
    sent_sms: Runtime, served: Any
) -> None:
    sent_sms.settings.secret_key = type(sent_sms.settings.slack_bot_token)(SECRET)  # type: ignore[misc]
    base = served.url.replace("/slack/events", "")
    good = f"{base}/unsubscribe/{token(SECRET, 1, 'unsubscribe')}"
    http = served.client  # the served app's client (tests/support/slack_requests.py)
    assert http.get(good).status_code == 200  # a GET (a link scanner) changes nothing
    with sent_sms.sessions() as session:
        assert session.scalars(select(Contact.email_opted_out_at)).one() is None
    assert http.post(good, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert http.post(good, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent
    with sent_sms.sessions() as session:
        assert session.scalars(select(Contact.email_opted_out_at)).one() is not None
        assert session.scalar(select(Contact.sms_opted_out_at)) is None
    forged = f"{base}/unsubscribe/1.{'0' * 20}"
    assert http.post(forged).status_code == 404
    assert http.post(f"{base}/unsubscribe/{token(SECRET, 1, 'reply')}").status_code == 404


def test_the_email_carries_a_one_click_unsubscribe_url(tmp_path: Path) -> None:
    from bot.planning.send_window import Window
    from bot.reminders.outbox import SendConfig, _outgoing

    reminder = Reminder(id=5, channel="email", subject="s", body_text="t", body_html="<p>t</p>")
    contact = Contact(email="ap@c.example", name="Ap")
    config = SendConfig("ar@b.example", "B", SECRET, Window(), PUBLIC)
    outgoing = _outgoing(reminder, None, contact, config)  # type: ignore[arg-type]
    assert outgoing.unsubscribe_url == f"{PUBLIC}/unsubscribe/{token(SECRET, 5, 'unsubscribe')}"
    assert timedelta(0) == timedelta(0)


def test_twilio_hanging_up_after_taking_the_text_is_unknown_not_retried(
    sms_env: Any, runtime: Runtime, twilio: FakeTwilio, tmp_path: Path
) -> None:
    approved_sms(sms_env, runtime, tmp_path)
    twilio.hang_up_after_reading = True
    assert "unknown 1" in sms_env("send").stdout
    twilio.hang_up_after_reading = False
    sms_env("send")
    assert len(twilio.messages) == 1
    with runtime.sessions() as session:
        assert session.scalar(select(Reminder.state)) == "unknown"


def test_a_twilio_account_problem_stops_the_run_and_marks_no_number(
    sms_env: Any, runtime: Runtime, twilio: FakeTwilio, tmp_path: Path
) -> None:
    approved_sms(sms_env, runtime, tmp_path)
    twilio.errors["+13125550142"] = (400, 21606, "The 'From' number is not a valid Twilio number")
    result = sms_env("send")
    assert result.code == 1 and "sending stopped" in result.stderr
    with runtime.sessions() as session:
        assert session.scalar(select(Reminder.state)) == "approved"
        assert session.scalar(select(Contact.sms_unusable_at)) is None


def test_a_report_that_arrives_before_the_sid_is_stored_still_finds_its_reminder(
    sent_sms: Runtime, served: Any
) -> None:
    secret_type = type(sent_sms.settings.slack_bot_token)
    sent_sms.settings.twilio_auth_token = secret_type(TOKEN)  # type: ignore[misc]
    sent_sms.settings.secret_key = secret_type(SECRET)  # type: ignore[misc]
    sent_sms.settings.public_url = PUBLIC
    query = f"r={token(SECRET, 1, 'status')}"
    form = {"MessageSid": "SM-not-yet-stored", "MessageStatus": "failed", "ErrorCode": "30006"}
    signature = twilio_signature(TOKEN, f"{PUBLIC}/webhooks/twilio/status?{query}", form)
    url = served.url.replace("/slack/events", f"/webhooks/twilio/status?{query}")
    http = served.client
    assert http.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 204
    with sent_sms.sessions() as session:
        assert session.scalars(select(Reminder.state)).one() == "failed"


@pytest.mark.parametrize("before", ["sending", "unknown"])
def test_a_failure_report_for_a_text_not_yet_stored_as_sent_fails_it_and_escalates(
    sent_sms: Runtime, served: Any, before: str
) -> None:
    """Still `sending` (its lane stores results a few at a time) or `unknown` (Twilio never
    answered the send): the report proves it was handed over, and that it failed. A stop asked
    for after its claim (the customer paid) no longer describes it."""
    secret_type = type(sent_sms.settings.slack_bot_token)
    sent_sms.settings.twilio_auth_token = secret_type(TOKEN)  # type: ignore[misc]
    sent_sms.settings.secret_key = secret_type(SECRET)  # type: ignore[misc]
    sent_sms.settings.public_url = PUBLIC
    with sent_sms.writing() as session:
        session.execute(
            update(Reminder).values(
                state=before, sent_at=None, provider_message_id=None, cancel_reason="paid"
            )
        )
    query = f"r={token(SECRET, 1, 'status')}"
    form = {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30006"}
    signature = twilio_signature(TOKEN, f"{PUBLIC}/webhooks/twilio/status?{query}", form)
    url = served.url.replace("/slack/events", f"/webhooks/twilio/status?{query}")
    http = served.client
    for _ in range(2):  # Twilio retries: changes nothing more
        assert (
            http.post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code == 204
        )
    with sent_sms.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        contact = session.scalars(select(Contact)).one()
        escalations = session.scalars(select(Escalation)).all()
        kinds = session.scalars(select(Event.kind).where(Event.reminder_id == reminder.id)).all()
    assert reminder.state == "failed" and reminder.error == "Twilio undelivered 30006"
    assert reminder.cancel_reason is None
    assert contact.sms_unusable_at is not None
    assert [(e.reason, e.reminder_id) for e in escalations] == [("send_failed", reminder.id)]
    assert kinds == ["reminder.failed", "escalation.opened"]


CORPUS_STOP = (
    Path(__file__).parents[3] / ".." / "shared" / "corpus" / "twilio" / "courier-statusStop.txt"
)


def _stop_report(served: Any, sent_sms: Runtime, form: dict[str, str]) -> None:
    sent_sms.settings.twilio_auth_token = type(sent_sms.settings.slack_bot_token)(TOKEN)  # type: ignore[misc]
    sent_sms.settings.public_url = PUBLIC
    assert _status(served, form).status_code == 204
    assert _status(served, form).status_code == 204  # Twilio retries: changes nothing more
    with sent_sms.sessions() as session:
        contact = session.scalars(select(Contact)).one()
        opted = session.scalars(select(Event).where(Event.kind == "contact.opted_out")).all()
        assert session.scalars(select(Reminder.state)).one() == "failed"
    assert contact.sms_opted_out_at is not None
    assert [e.payload["how"] for e in opted] == ["Twilio 21610"]


def test_a_delivery_report_with_error_21610_opts_the_number_out(
    sent_sms: Runtime, served: Any
) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "21610"}
    _stop_report(served, sent_sms, form)


def test_twilios_own_21610_status_callback_opts_the_number_out(
    sent_sms: Runtime, served: Any
) -> None:
    if not CORPUS_STOP.exists():
        pytest.skip("the shared corpus (../shared/corpus/twilio) is not beside the project")
    form = {k: v[0] for k, v in parse_qs(CORPUS_STOP.read_text().strip()).items()}
    with sent_sms.writing() as session:  # the report is about our own text
        session.execute(update(Reminder).values(provider_message_id=form["MessageSid"]))
    _stop_report(served, sent_sms, form)
