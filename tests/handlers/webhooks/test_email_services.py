"""Replies through the mail services, each on its own path of the real ASGI app with its own
verification: Mailgun (HMAC of timestamp and token), SendGrid and Postmark (basic auth on the
URL), Amazon SES through SNS (the SNS signature against a certificate from SNS's host). A
request that is not signed as its service signs changes nothing; a signed one lands in Slack as a
reply to POST /webhooks/email does."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, InboundMessage
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.core.tokens import token
from integrations.inbound_mail.mailgun import mailgun_signature
from tests.support import fake_sns
from tests.support.fake_slack import validate_blocks
from tests.support.inbound_requests import DISPUTE, KEY, counts, email_reply, the_reminder

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

MAILGUN_KEY = "key-mailgun-signing-1"
SENDGRID = ("sendgrid", "sg-inbound-password")
POSTMARK = ("postmark", "pm-inbound-password")
SENT_MESSAGE_ID = "<arbot.1.0123456789abcdef@brightwater.example>"  # the reminder's, as sent


@pytest.fixture
def sns_server() -> Iterator[fake_sns.FakeSns]:
    server = fake_sns.FakeSns().start()
    yield server
    server.stop()


@pytest.fixture
def inbound_settings(inbound_settings: Settings, sns_server: fake_sns.FakeSns) -> Settings:
    return inbound_settings.model_copy(
        update={
            "mailgun_webhook_signing_key": SecretStr(MAILGUN_KEY),
            "sendgrid_inbound_user": SENDGRID[0],
            "sendgrid_inbound_password": SecretStr(SENDGRID[1]),
            "postmark_inbound_user": POSTMARK[0],
            "postmark_inbound_password": SecretStr(POSTMARK[1]),
            "ses_topic_arns": [fake_sns.TOPIC],
            "sns_api_url": sns_server.url,
        }
    )


def multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def dispute_reply(rt: Runtime) -> bytes:
    reminder = the_reminder(rt)
    return email_reply(DISPUTE, To=f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example")


def assert_landed_in_slack(rt: Runtime, slack_api: Any) -> None:
    """The dispute is stored, matched and escalated in a Slack thread, as on POST /webhooks/email."""
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert stored.label == "dispute" and stored.reminder_id is not None
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert validate_blocks(parent["blocks"]) == []
    assert "second delivery arrived damaged" in json.dumps(parent["blocks"])


# Mailgun


def mailgun_form(
    clock: FixedClock, raw: bytes, key: str = MAILGUN_KEY, age_seconds: int = 0, tok: str = ""
) -> dict[str, bytes]:
    timestamp = str(int(clock.now().timestamp()) - age_seconds)
    tok = tok or uuid.uuid4().hex + uuid.uuid4().hex[:18]
    return {
        "recipient": b"ar@brightwater.example",
        "sender": b"ap@ridgeline.example",
        "timestamp": timestamp.encode(),
        "token": tok.encode(),
        "signature": mailgun_signature(key, timestamp, tok).encode(),
        "body-mime": raw,
    }


def post_mailgun(app: httpx.Client, form: dict[str, bytes]) -> httpx.Response:
    body, content_type = multipart(form)
    return app.post(
        "/webhooks/email/mailgun/mime", content=body, headers={"Content-Type": content_type}
    )


def test_a_mailgun_route_delivers_a_signed_reply_to_slack(
    rt: Runtime, app: httpx.Client, clock: FixedClock, slack_api: Any
) -> None:
    answer = post_mailgun(app, mailgun_form(clock, dispute_reply(rt)))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    assert_landed_in_slack(rt, slack_api)


@pytest.mark.parametrize(
    "bad",
    ["wrong key", "stale timestamp", "no signature", "urlencoded wrong key"],
)
def test_a_mailgun_request_not_signed_now_with_the_key_changes_nothing(
    rt: Runtime, app: httpx.Client, clock: FixedClock, bad: str
) -> None:
    before = counts(rt)
    raw = dispute_reply(rt)
    if bad == "wrong key":
        answer = post_mailgun(app, mailgun_form(clock, raw, key="not-the-key"))
    elif bad == "stale timestamp":
        answer = post_mailgun(app, mailgun_form(clock, raw, age_seconds=301))
    elif bad == "no signature":
        form = mailgun_form(clock, raw)
        del form["signature"]
        answer = post_mailgun(app, form)
    else:
        form = {k: v.decode() for k, v in mailgun_form(clock, raw, key="x").items()}
        answer = app.post("/webhooks/email/mailgun", data=form)
    assert answer.status_code == 401
    assert counts(rt) == before


def test_a_replayed_mailgun_token_is_refused(
    rt: Runtime, app: httpx.Client, clock: FixedClock
) -> None:
    tok = "t" * 50
    first = mailgun_form(
        clock, email_reply("Out of office", Auto_Submitted="auto-replied"), tok=tok
    )
    assert post_mailgun(app, first).status_code == 200
    before = counts(rt)

    replay = mailgun_form(clock, dispute_reply(rt), tok=tok)  # signed anew, but the token is spent

    assert post_mailgun(app, replay).status_code == 401
    assert counts(rt) == before


def test_a_mailgun_parsed_form_is_made_again_with_its_headers(
    rt: Runtime, app: httpx.Client, clock: FixedClock
) -> None:
    form = mailgun_form(clock, b"")
    del form["body-mime"]
    headers = [
        ["From", "Maria Garcia <ap@ridgeline.example>"],
        ["To", "ar@brightwater.example"],
        ["Subject", "Re: Invoice INV-1001 is past due"],
        ["Message-Id", "<mg-reply@ridgeline.example>"],
        ["In-Reply-To", SENT_MESSAGE_ID],
        ["Content-Type", 'multipart/alternative; boundary="gone"'],
    ]
    form["message-headers"] = json.dumps(headers).encode()
    form["body-plain"] = b"We will pay this by the 30th. Sorry for the delay."
    answer = app.post("/webhooks/email/mailgun", data={k: v.decode() for k, v in form.items()})

    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "promise_to_pay"
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert stored.matched_by == "in_reply_to"
    assert stored.message_id == "<mg-reply@ridgeline.example>"


# SendGrid


def post_sendgrid(
    app: httpx.Client, raw: bytes, auth: tuple[str, str] = SENDGRID
) -> httpx.Response:
    body, content_type = multipart(
        {
            "to": b"ar@brightwater.example",
            "from": b"Maria Garcia <ap@ridgeline.example>",
            "subject": b"Re: Invoice INV-1001 is past due",
            "envelope": b'{"to":["ar@brightwater.example"],"from":"ap@ridgeline.example"}',
            "charsets": b'{"to":"UTF-8","from":"UTF-8","subject":"UTF-8"}',
            "email": raw,
        }
    )
    return app.post(
        "/webhooks/email/sendgrid",
        content=body,
        headers={"Content-Type": content_type, "Authorization": basic(*auth)},
    )


def test_sendgrid_inbound_parse_delivers_the_raw_message_to_slack(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    answer = post_sendgrid(app, dispute_reply(rt))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    assert_landed_in_slack(rt, slack_api)


@pytest.mark.parametrize("auth", [("sendgrid", "wrong"), ("someone", SENDGRID[1]), ("", "")])
def test_sendgrid_without_its_credentials_changes_nothing(
    rt: Runtime, app: httpx.Client, auth: tuple[str, str]
) -> None:
    before = counts(rt)
    assert post_sendgrid(app, dispute_reply(rt), auth).status_code == 401
    assert counts(rt) == before


def test_sendgrid_parsed_mode_is_refused_saying_which_option_to_tick(
    rt: Runtime, app: httpx.Client
) -> None:
    body, content_type = multipart({"text": b"hello", "from": b"ap@ridgeline.example"})
    answer = app.post(
        "/webhooks/email/sendgrid",
        content=body,
        headers={"Content-Type": content_type, "Authorization": basic(*SENDGRID)},
    )
    assert answer.status_code == 400
    assert "POST the raw, full MIME message" in answer.text


# Postmark


def postmark_json(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "FromName": "Maria Garcia",
        "MessageStream": "inbound",
        "From": "ap@ridgeline.example",
        "FromFull": {"Email": "ap@ridgeline.example", "Name": "Maria Garcia", "MailboxHash": ""},
        "To": "ar@brightwater.example",
        "ToFull": [{"Email": "ar@brightwater.example", "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "OriginalRecipient": "ar@brightwater.example",
        "Subject": "Re: Invoice INV-1001 is past due",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",  # Postmark's, not the message's
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 16 Mar 2026 10:01:00 -0400",
        "TextBody": text,
        "HtmlBody": "",
        "StrippedTextReply": text,
        "Tag": "",
        "Headers": [
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<pm-reply@ridgeline.example>"},
            {"Name": "In-Reply-To", "Value": SENT_MESSAGE_ID},
            {"Name": "References", "Value": SENT_MESSAGE_ID},
        ],
        "Attachments": [],
        **extra,
    }


def post_postmark(
    app: httpx.Client, document: dict[str, Any], auth: tuple[str, str] = POSTMARK
) -> httpx.Response:
    return app.post(
        "/webhooks/email/postmark",
        content=json.dumps(document),
        headers={"Content-Type": "application/json", "Authorization": basic(*auth)},
    )


def test_postmark_rebuilt_message_keeps_message_id_and_in_reply_to_so_it_matches(
    rt: Runtime, app: httpx.Client
) -> None:
    document = postmark_json("We will pay this by the 30th. Sorry for the delay.")
    document["Attachments"] = [
        {
            "Name": "remittance.pdf",
            "Content": base64.b64encode(b"%PDF-1.4 remittance").decode(),
            "ContentType": "application/pdf",
            "ContentLength": 19,
        }
    ]

    answer = post_postmark(app, document)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "promise_to_pay"}
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert stored.matched_by == "in_reply_to"
    assert stored.message_id == "<pm-reply@ridgeline.example>"
    assert stored.sender == "ap@ridgeline.example"
    assert "remittance.pdf" in stored.raw


def test_postmark_delivers_a_dispute_to_slack_and_the_same_post_twice_once(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    document = postmark_json(DISPUTE)
    assert post_postmark(app, document).json() == {"status": "reply", "label": "dispute"}
    assert_landed_in_slack(rt, slack_api)
    before = counts(rt)
    assert post_postmark(app, document).json()["status"] == "duplicate"  # Postmark retrying
    assert counts(rt) == before


def test_postmark_raw_email_is_used_as_it_came(rt: Runtime, app: httpx.Client) -> None:
    raw = email_reply("We will pay this by the 30th.", In_Reply_To=SENT_MESSAGE_ID)
    document = postmark_json("ignored", RawEmail=raw.decode())
    document["Headers"] = []
    assert post_postmark(app, document).json()["label"] == "promise_to_pay"
    with rt.sessions() as session:
        assert session.scalars(select(InboundMessage.message_id)).one() == (
            "<reply-1@ridgeline.example>"
        )


def test_postmark_without_its_credentials_changes_nothing(rt: Runtime, app: httpx.Client) -> None:
    before = counts(rt)
    assert post_postmark(app, postmark_json(DISPUTE), ("postmark", "nope")).status_code == 401
    answer = app.post("/webhooks/email/postmark", json=postmark_json(DISPUTE))
    assert answer.status_code == 401
    assert counts(rt) == before


# Amazon SES through SNS


def post_sns(app: httpx.Client, message: dict[str, str]) -> httpx.Response:
    return app.post(
        "/webhooks/email/ses",
        content=json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": message["Type"],
            "x-amz-sns-topic-arn": message["TopicArn"],
        },
    )


def test_an_sns_subscription_is_confirmed_by_a_get_of_its_subscribe_url(
    rt: Runtime, app: httpx.Client, sns_server: fake_sns.FakeSns
) -> None:
    message = fake_sns.subscription_confirmation(sns_server.url, sns_server.cert_url)

    answer = post_sns(app, message)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "subscribed"}
    assert message["SubscribeURL"].removeprefix(sns_server.url) in sns_server.requests


@pytest.mark.parametrize(("version", "encoding"), [("1", "UTF8"), ("2", "BASE64")])
def test_an_ses_notification_signed_by_sns_delivers_its_content_to_slack(
    rt: Runtime,
    app: httpx.Client,
    slack_api: Any,
    sns_server: fake_sns.FakeSns,
    version: str,
    encoding: str,
) -> None:
    content = fake_sns.ses_received(dispute_reply(rt), encoding)
    message = fake_sns.notification(
        content, sns_server.cert_url, version=version, Subject="Amazon SES Email Receipt"
    )

    answer = post_sns(app, message)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    assert_landed_in_slack(rt, slack_api)


def _tampered(message: dict[str, str]) -> dict[str, str]:
    notification = json.loads(message["Message"])
    notification["content"] = notification["content"].replace("damaged", "fine")
    return {**message, "Message": json.dumps(notification)}


@pytest.mark.parametrize(
    "bad", ["tampered", "other topic", "unknown version", "certificate elsewhere", "not base64"]
)
def test_an_sns_message_not_signed_by_sns_for_our_topic_changes_nothing(
    rt: Runtime, app: httpx.Client, sns_server: fake_sns.FakeSns, bad: str
) -> None:
    before = counts(rt)
    content = fake_sns.ses_received(dispute_reply(rt))
    if bad == "other topic":
        other = "arn:aws:sns:us-east-1:999999999999:someone-else"
        message = fake_sns.notification(content, sns_server.cert_url, topic=other)
    else:
        message = fake_sns.notification(content, sns_server.cert_url)
    if bad == "tampered":
        message = _tampered(message)
    elif bad == "unknown version":
        message["SignatureVersion"] = "3"
    elif bad == "certificate elsewhere":
        message["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.evil.example/c.pem"
    elif bad == "not base64":
        message["Signature"] = "!!"
    fetched = list(sns_server.requests)

    assert post_sns(app, message).status_code == 401
    assert counts(rt) == before
    if bad != "tampered":
        assert sns_server.requests == fetched  # no certificate was fetched for it


def test_a_subscription_for_another_topic_is_not_confirmed(
    rt: Runtime, app: httpx.Client, sns_server: fake_sns.FakeSns
) -> None:
    other = "arn:aws:sns:eu-west-1:999999999999:someone-else"
    message = fake_sns.subscription_confirmation(sns_server.url, sns_server.cert_url, other)
    assert post_sns(app, message).status_code == 401
    assert not any("ConfirmSubscription" in path for path in sns_server.requests)


def test_a_message_ses_stored_in_s3_is_kept_for_a_person_naming_where_it_is(
    rt: Runtime, app: httpx.Client, slack_api: Any, sns_server: fake_sns.FakeSns
) -> None:
    content = fake_sns.ses_stored_in_s3("ar-inbound-mail", "o3vtl5m2ab1k")
    answer = post_sns(app, fake_sns.notification(content, sns_server.cert_url))

    assert answer.status_code == 200, answer.text
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert "ar-inbound-mail" in stored.raw and "o3vtl5m2ab1k" in stored.raw
    assert counts(rt)[2] == ("planned",)  # nothing acted on what nobody has read
    told = slack_api.calls("chat.postMessage")[-1]
    assert told["channel"] == "C0FINANCE"
    assert "o3vtl5m2ab1k" in told["text"] and "set SES_S3_ACCESS_KEY_ID" in told["text"]


def test_a_service_path_takes_messages_up_to_the_inbound_email_limit_not_1_mb(
    rt: Runtime, app: httpx.Client
) -> None:
    document = postmark_json("Remittance attached. We will pay this by the 30th.")
    document["Attachments"] = [
        {
            "Name": "scan.pdf",
            "Content": base64.b64encode(b"%PDF" + b"\0" * 1_500_000).decode(),
            "ContentType": "application/pdf",
        }
    ]
    answer = post_postmark(app, document)
    assert answer.status_code == 200, answer.text[:200]
