"""Deliveries through POST /webhooks/email that once went wrong: a message without a Message-ID
delivered twice, and a person's reply that came through a mailing list (a Google Group)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import InboundMessage
from bot.core.runtime import Runtime
from tests.support.inbound_requests import counts, email_reply, post_mail

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

SENT_ID = "<arbot.1.0123456789abcdef@brightwater.example>"


def _without_message_id(raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    kept = [line for line in lines if not line.lower().startswith(b"message-id:")]
    assert len(kept) == len(lines) - 1
    return b"\n".join(kept)


def test_a_message_without_a_message_id_delivered_twice_is_handled_once(
    rt: Runtime, app: httpx.Client
) -> None:
    raw = _without_message_id(email_reply("We will pay on Friday.", In_Reply_To=SENT_ID))

    assert post_mail(app, raw).json()["status"] == "reply"
    before = counts(rt)
    again = raw.replace(b"\n", b"\r\n")  # the same message, as another relay writes lines
    assert post_mail(app, again).json()["status"] == "duplicate"
    assert counts(rt) == before


def test_two_different_messages_without_a_message_id_are_both_handled(
    rt: Runtime, app: httpx.Client
) -> None:
    first = _without_message_id(email_reply("We will pay on Friday.", In_Reply_To=SENT_ID))
    second = _without_message_id(email_reply("Sent it today.", In_Reply_To=SENT_ID))

    assert post_mail(app, first).json()["status"] == "reply"
    assert post_mail(app, second).json()["status"] == "reply"
    with rt.sessions() as session:
        digests = session.scalars(select(InboundMessage.raw_digest)).all()
    assert len(digests) == 2 and len(set(digests)) == 2 and all(digests)


def test_a_persons_reply_through_a_google_group_pauses_the_reminder(
    rt: Runtime, app: httpx.Client
) -> None:
    raw = email_reply(
        "We will pay on Friday.",
        In_Reply_To=SENT_ID,
        Precedence="list",
        List_Id="<billing.ridgeline.example>",
        Mailing_List="list billing@ridgeline.example; contact billing+owners@ridgeline.example",
    )

    assert post_mail(app, raw).json() == {"status": "reply", "label": "promise_to_pay"}
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert stored.automatic is False and stored.label == "promise_to_pay"
