"""No customer reply is lost: a NUL byte (which PostgreSQL refuses in text), bytes that are not
UTF-8, a message that cannot be read or one whose handling fails are all kept and answered 200,
through the real app on SQLite and PostgreSQL. What can be stored is stored with U+FFFD in place
of what cannot, the message as it came is kept as bytes, and the cleaned text is acted on."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, text

from bot.core.models import Escalation, Event, InboundMessage, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from integrations.twilio_sms import twilio_signature
from tests.support import TLS
from tests.support.inbound_requests import (
    KEY,
    PUBLIC,
    TWILIO_TOKEN,
    counts,
    post_mail,
    text_in,
    the_reminder,
)

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

FFFD = "\ufffd"


def raw_mail(body: bytes, subject: bytes, message_id: bytes, **headers: bytes) -> bytes:
    """A message built byte by byte: email.message would not carry a NUL or stray 8-bit bytes."""
    lines = [
        b"From: Maria Garcia <ap@ridgeline.example>",
        b"To: " + headers.pop("To", b"ar@brightwater.example"),
        b"Subject: " + subject,
        b"Message-ID: " + message_id,
        b"MIME-Version: 1.0",
        b"Content-Type: " + headers.pop("Content_Type", b"text/plain; charset=utf-8"),
        b"Content-Transfer-Encoding: 8bit",
        *(name.replace("_", "-").encode() + b": " + value for name, value in headers.items()),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def nested_mime(depth: int) -> bytes:
    """Multiparts inside multiparts, deeper than a parser's recursion goes."""
    head = b"From: Someone <who@else.example>\r\nSubject: Statement\r\nMIME-Version: 1.0\r\n"
    parts = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(depth)
    )
    return head + parts + b"Content-Type: text/plain\r\n\r\nsee the attached statement\r\n"


def stored(rt: Runtime) -> list[InboundMessage]:
    with rt.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def finance_posts(slack_api: Any, saying: str) -> list[str]:
    return [
        str(c.get("text", ""))
        for c in slack_api.calls("chat.postMessage")
        if c["channel"] == "C0FINANCE" and saying in str(c.get("text", ""))
    ]


def test_a_dispute_with_nul_bytes_is_kept_and_still_pauses_the_customer(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = the_reminder(rt)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example".encode()
    raw = raw_mail(
        b"Hi,\x00 we are not paying INV-1001: the goods arrived damaged and we dispute it.",
        subject=b"Re: INV-1001\x00 past due",
        message_id=b"<reply-\x00-1@ridgeline.example>",
        To=to,
    )

    answer = post_mail(app, raw)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    [message] = stored(rt)
    assert message.subject == f"Re: INV-1001{FFFD} past due"
    assert message.message_id == f"<reply-{FFFD}-1@ridgeline.example>"
    assert message.text.startswith(f"Hi,{FFFD} we are not paying INV-1001")
    assert "\x00" not in message.raw and message.raw_bytes == raw  # kept exactly as it came
    with rt.sessions() as session:
        after = session.get(Reminder, reminder.id)
        assert after is not None and (after.state, after.cancel_reason) == ("cancelled", "replied")
        disputed = dict(session.execute(select(Invoice.number, Invoice.disputed)).all())
        assert disputed == {"INV-1001": True, "INV-1002": False}
    # the provider retrying it is told it is known already
    assert post_mail(app, raw).json()["status"] == "duplicate"
    assert len(stored(rt)) == 1


def test_a_message_that_is_not_utf8_keeps_its_bytes_exactly(rt: Runtime, app: httpx.Client) -> None:
    raw = raw_mail(
        b"Nous paierons la facture INV-1001 vendredi. Merci, \xc9lodie \xff",
        subject=b"Re: facture",
        message_id=b"<latin-1@ridgeline.example>",
        Content_Type=b"text/plain",  # no charset: the bytes are Latin-1 all the same
    )

    assert post_mail(app, raw).status_code == 200

    [message] = stored(rt)
    assert message.raw_bytes == raw
    assert f"{FFFD}lodie" in message.raw  # the text column holds what UTF-8 could read


def test_a_plain_reply_keeps_no_second_copy(rt: Runtime, app: httpx.Client) -> None:
    raw = raw_mail(b"We will pay on Friday.", b"Re: INV-1001", b"<plain@ridgeline.example>")

    assert post_mail(app, raw).status_code == 200

    [message] = stored(rt)
    assert message.raw_bytes is None and message.raw == raw.decode()


def test_a_reply_with_seventy_thousand_references_is_still_matched(
    rt: Runtime, app: httpx.Client
) -> None:
    """More ids than PostgreSQL takes parameters in one statement (65,535)."""
    references = b" ".join(b"<r%d@ridgeline.example>" % n for n in range(70_000))
    raw = raw_mail(
        b"We will pay on Friday.",
        b"Re: INV-1001",
        b"<refs@ridgeline.example>",
        References=references + b" <arbot.1.0123456789abcdef@brightwater.example>",
    )

    assert post_mail(app, raw).json() == {"status": "reply", "label": "promise_to_pay"}
    [message] = stored(rt)
    assert message.matched_by == "in_reply_to"


def test_a_text_with_nul_bytes_is_kept_and_a_dispute_in_it_still_pauses(
    rt: Runtime, app: httpx.Client
) -> None:
    answer = text_in(app, "We dispute\x00 INV-1001: the goods arrived damaged")

    assert answer.status_code == 200, answer.text
    [message] = stored(rt)
    assert message.text == f"We dispute{FFFD} INV-1001: the goods arrived damaged"
    assert message.raw_bytes == b"We dispute\x00 INV-1001: the goods arrived damaged"
    with rt.sessions() as session:
        assert session.scalars(select(Reminder.state)).one() == "cancelled"
        disputed = dict(session.execute(select(Invoice.number, Invoice.disputed)).all())
        assert disputed["INV-1001"] is True


def test_a_text_from_a_number_with_a_nul_is_kept_for_a_person(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    answer = text_in(app, "who is this?", sender="+1312555\x000142")

    assert answer.status_code == 200, answer.text
    [message] = stored(rt)
    assert message.sender == f"+1312555{FFFD}0142" and message.customer_id is None
    assert len(finance_posts(slack_api, "matched no customer")) == 1


def test_a_delivery_report_with_a_nul_is_answered_not_failed(
    rt: Runtime, app: httpx.Client
) -> None:
    form = {"MessageSid": "SM\x00x", "MessageStatus": "undelivered", "ErrorCode": "30003\x00"}
    url = f"{PUBLIC}/webhooks/twilio/status"

    answer = app.post(
        "/webhooks/twilio/status",
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, form),
        },
    )

    assert answer.status_code == 204, answer.text


def test_a_message_that_cannot_be_read_is_kept_and_handed_to_the_finance_channel(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    raw = nested_mime(5000)

    answer = post_mail(app, raw)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "unreadable"
    [message] = stored(rt)
    assert (message.label, message.customer_id, message.awaiting_slack) == (
        "unreadable",
        None,
        False,  # told
    )
    assert message.raw == raw.decode() and message.raw_bytes is None
    [post] = finance_posts(slack_api, "could not be read automatically")
    assert f"/ar assign {message.id} CUSTOMER" in post
    with rt.sessions() as session:
        why = session.scalars(select(Event.payload).where(Event.kind == "reply.unreadable")).one()
    assert why == {"inbound": message.id, "why": "reading it failed (RecursionError)"}


def refuse_escalations(rt: Runtime) -> None:
    """The database refuses every new escalation (a trigger): storing a reply fails half-way."""
    with rt.writing() as session:
        if rt.engine.dialect.name == "sqlite":
            session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON escalations "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
            return
        session.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON escalations "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )


def allow_escalations(rt: Runtime) -> None:
    with rt.writing() as session:
        session.execute(text("DROP TRIGGER refuse" + (" ON escalations" if _pg(rt) else "")))
        if _pg(rt):
            session.execute(text("DROP FUNCTION refuse()"))


def _pg(rt: Runtime) -> bool:
    return rt.engine.dialect.name == "postgresql"


def test_a_reply_whose_handling_fails_is_kept_for_a_person_and_not_delivered_again(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    raw = raw_mail(
        b"We dispute INV-1001: the goods arrived damaged.",
        b"Re: INV-1001",
        b"<fails@ridgeline.example>",
    )
    before = counts(rt)
    refuse_escalations(rt)
    try:
        answer = post_mail(app, raw)
    finally:
        allow_escalations(rt)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "unreadable"
    [message] = stored(rt)
    assert message.label == "unreadable" and message.message_id == "<fails@ridgeline.example>"
    assert message.text == "We dispute INV-1001: the goods arrived damaged."
    assert counts(rt)[1:] == before[1:]  # the half-done handling was rolled back
    [post] = finance_posts(slack_api, "could not be read automatically")
    assert "ap@ridgeline.example" in post and "We dispute INV-1001" in post
    # delivered again (the sender did not hear the 200), it is known already
    assert post_mail(app, raw).json()["status"] == "duplicate"
    with rt.sessions() as session:
        assert session.scalar(select(Escalation.id)) is None


def test_poll_inbox_keeps_what_it_cannot_store_or_read_and_moves_on(
    rt: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch, slack_api: Any
) -> None:
    from tests.support.fake_imap import PASSWORD, USER, FakeImap

    reminder = the_reminder(rt)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example".encode()
    dispute = raw_mail(
        b"We dispute\x00 INV-1001: the goods arrived damaged.",
        b"Re: INV-1001\x00",
        b"<imap-\x00@ridgeline.example>",
        To=to,
    )
    with FakeImap() as imap:
        imap.mailbox.add(dispute)
        imap.mailbox.add(nested_mime(5000))
        for name, value in {
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(imap.port),
            "IMAP_USER": USER,
            "IMAP_PASSWORD": PASSWORD,
            "IMAP_CA_FILE": str(TLS / "cert.pem"),
            "ARBOT_SECRET_KEY": KEY,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack_api.url,
            "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
            "ARBOT_ESCALATION_CHANNEL": "C0ESCALATE",
        }.items():
            monkeypatch.setenv(name, value)

        first = cli("poll-inbox")
        second = cli("poll-inbox")

        assert first.code == 0, first.stderr
        assert "2 fetched: 1 reply, 1 unreadable" in first.stdout
        assert "0 fetched" in second.stdout  # neither is fetched again
        assert imap.mailbox.unseen_uids() == []
    kept = stored(rt)
    assert [m.label for m in kept] == ["dispute", "unreadable"]
    assert kept[0].raw_bytes == dispute and kept[1].raw == nested_mime(5000).decode()
    with rt.sessions() as session:
        assert session.scalars(select(Reminder.cancel_reason)).one() == "replied"
    assert len(finance_posts(slack_api, "could not be read automatically")) == 1
