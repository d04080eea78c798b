"""Amazon SES receipt rules that store the message in S3: the SNS notification names the bucket
and key, arbot reads the object from S3 (a local fake that checks the Signature Version 4 with the
same secret) and the message goes the way every inbound message goes. When S3 cannot be read, the
notification is kept for a person and the finance channel is told where the message is and why;
a passing failure of a fresh notification is answered 503, so that SNS delivers it again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, InboundMessage, Reminder
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.core.tokens import token
from tests.handlers.webhooks.test_email_services import SENT_MESSAGE_ID, post_sns
from tests.support import MAIL_SAMPLES, fake_s3, fake_sns
from tests.support.inbound_requests import KEY, counts, the_reminder

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

KEY_IN_S3 = "inbound/0ab1c2d3e4f5g6h7i8j9"


@pytest.fixture
def sns_server() -> Iterator[fake_sns.FakeSns]:
    server = fake_sns.FakeSns().start()
    yield server
    server.stop()


@pytest.fixture
def s3_server() -> Iterator[fake_s3.FakeS3]:
    server = fake_s3.FakeS3().start()
    yield server
    server.stop()


@pytest.fixture
def s3_secret() -> str:
    return fake_s3.SECRET_ACCESS_KEY


@pytest.fixture
def inbound_settings(
    inbound_settings: Settings,
    sns_server: fake_sns.FakeSns,
    s3_server: fake_s3.FakeS3,
    s3_secret: str,
) -> Settings:
    return inbound_settings.model_copy(
        update={
            "ses_topic_arns": [fake_sns.TOPIC],
            "sns_api_url": sns_server.url,
            "ses_s3_access_key_id": fake_s3.ACCESS_KEY_ID,
            "ses_s3_secret_access_key": SecretStr(s3_secret),
            "s3_api_url": s3_server.url,
        }
    )


def stored_in_s3(
    app: httpx.Client, sns_server: fake_sns.FakeSns, key: str = KEY_IN_S3, **extra: str
) -> httpx.Response:
    content = fake_sns.ses_stored_in_s3(fake_s3.BUCKET, key, "RE: Invoice INV-1001")
    return post_sns(app, fake_sns.notification(content, sns_server.cert_url, **extra))


def outlook_reply_to(rt: Runtime) -> bytes:
    """The real Outlook reply among the samples, answering this deployment's reminder: its
    In-Reply-To, References and +r. address are the reminder's."""
    reminder = the_reminder(rt)
    raw = (MAIL_SAMPLES / "outlook_reply.eml").read_bytes()
    address = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example"
    return raw.replace(b"<arbot.7.abcdef0123456789@example.com>", SENT_MESSAGE_ID.encode()).replace(
        b"ar+r.7.39dfa579e04d3266563e@example.com", address.encode()
    )


def told_finance(slack_api: Any) -> str:
    posted = slack_api.calls("chat.postMessage")[-1]
    assert posted["channel"] == "C0FINANCE"
    return str(posted["text"])


def test_a_reply_ses_stored_in_s3_is_read_from_there_and_lands_on_its_reminder_in_slack(
    rt: Runtime,
    app: httpx.Client,
    slack_api: Any,
    sns_server: fake_sns.FakeSns,
    s3_server: fake_s3.FakeS3,
) -> None:
    raw = outlook_reply_to(rt)
    s3_server.put(KEY_IN_S3, raw)

    answer = stored_in_s3(app, sns_server)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert stored.reminder_id == the_reminder(rt).id and stored.matched_by == "reply_token"
    assert stored.raw_bytes is None and stored.raw.encode() == raw  # the object, as it was
    thread = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert "on-site visit" in str(thread["blocks"])
    # one signed GET, path-style on the base URL
    (request,) = s3_server.requests
    assert request["path"] == f"/{fake_s3.BUCKET}/inbound/0ab1c2d3e4f5g6h7i8j9"
    assert request["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={fake_s3.ACCESS_KEY_ID}/20260316/us-east-1/s3/aws4_request"
    )
    # SNS delivering the same notification again changes nothing (the Message-ID is known)
    before = counts(rt)
    assert stored_in_s3(app, sns_server).json()["status"] == "duplicate"
    assert counts(rt) == before


def test_a_bounce_ses_stored_in_s3_is_recognised_and_fails_the_reminder(
    rt: Runtime, app: httpx.Client, sns_server: fake_sns.FakeSns, s3_server: fake_s3.FakeS3
) -> None:
    reminder = the_reminder(rt)
    with rt.writing() as session:
        session.get(Reminder, reminder.id).state = "sent"  # type: ignore[union-attr]
    raw = (
        (MAIL_SAMPLES / "dsn_bounce.eml")
        .read_bytes()
        .replace(
            b"bounce+7.448550aabafd79fd1904@example.com",
            f"bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example".encode(),
        )
        .replace(b"<arbot.7.abcdef0123456789@example.com>", SENT_MESSAGE_ID.encode())
        .replace(b"nobody@northwind.example", b"ap@ridgeline.example")
    )
    s3_server.put("bounce-1", raw)

    answer = stored_in_s3(app, sns_server, key="bounce-1")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "bounce"
    with rt.sessions() as session:
        after = session.get(Reminder, reminder.id)
    assert after is not None and after.state == "failed" and "5.1.1" in (after.error or "")


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("denied", "S3 answered 403 AccessDenied"),
        ("missing", "S3 answered 404 NoSuchKey"),
        ("empty", "the object is empty"),
    ],
)
def test_an_object_s3_refuses_or_has_not_is_kept_for_a_person_and_said(
    rt: Runtime,
    app: httpx.Client,
    slack_api: Any,
    sns_server: fake_sns.FakeSns,
    s3_server: fake_s3.FakeS3,
    case: str,
    said: str,
) -> None:
    s3_server.put("someone-else", b"Subject: x\r\n\r\nx")  # the bucket exists
    if case == "denied":
        s3_server.put(KEY_IN_S3, outlook_reply_to(rt))
        s3_server.denied.add((fake_s3.BUCKET, KEY_IN_S3))
    elif case == "empty":
        s3_server.put(KEY_IN_S3, b"\r\n")

    answer = stored_in_s3(app, sns_server)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "unreadable"
    assert counts(rt)[1:] == (0, ("planned",))  # nothing acted on what nobody has read
    with rt.sessions() as session:
        kept = session.scalars(select(InboundMessage)).one()
    assert KEY_IN_S3 in kept.raw  # the notification, as SNS delivered it
    text = told_finance(slack_api)
    assert fake_s3.BUCKET in text and KEY_IN_S3 in text and said in text
    assert "ap@ridgeline.example" in text and "RE: Invoice INV-1001" in text
    if case == "denied":
        assert "s3:GetObject" in text
    elif case == "missing":
        assert "lifecycle" in text


@pytest.mark.parametrize("s3_secret", ["not-the-secret"])
def test_a_wrong_secret_is_kept_for_a_person_saying_which_settings_to_check(
    rt: Runtime,
    app: httpx.Client,
    slack_api: Any,
    sns_server: fake_sns.FakeSns,
    s3_server: fake_s3.FakeS3,
) -> None:
    s3_server.put(KEY_IN_S3, outlook_reply_to(rt))

    assert stored_in_s3(app, sns_server).json()["status"] == "unreadable"
    text = told_finance(slack_api)
    assert "403 SignatureDoesNotMatch" in text and "SES_S3_SECRET_ACCESS_KEY" in text


def test_a_passing_s3_failure_asks_sns_to_deliver_again_and_the_retry_delivers(
    rt: Runtime, app: httpx.Client, sns_server: fake_sns.FakeSns, s3_server: fake_s3.FakeS3
) -> None:
    s3_server.put(KEY_IN_S3, outlook_reply_to(rt))
    s3_server.failures.append(503)
    content = fake_sns.ses_stored_in_s3(fake_s3.BUCKET, KEY_IN_S3)
    message = fake_sns.notification(content, sns_server.cert_url)
    before = counts(rt)

    first = post_sns(app, message)

    assert first.status_code == 503  # SNS retries a 5xx, never a 4xx
    assert counts(rt) == before
    again = post_sns(app, message)  # SNS's retry: the same message, the same Timestamp
    assert again.status_code == 200 and again.json()["status"] == "reply"


@pytest.mark.parametrize("seconds", [30, -6])
def test_a_passing_failure_of_a_notification_outside_the_retry_window_is_kept(
    rt: Runtime,
    app: httpx.Client,
    clock: FixedClock,
    slack_api: Any,
    sns_server: fake_sns.FakeSns,
    s3_server: fake_s3.FakeS3,
    seconds: int,
) -> None:
    s3_server.put(KEY_IN_S3, outlook_reply_to(rt))
    s3_server.failures.append(500)
    # its Timestamp 30 s ago (SNS's last tries), or ahead of our clock by more than it may be
    clock.set(clock.now() + timedelta(seconds=seconds))

    answer = stored_in_s3(app, sns_server)

    assert answer.status_code == 200 and answer.json()["status"] == "unreadable"
    assert "S3 answered 500 InternalError" in told_finance(slack_api)
