"""A text through the real ASGI app: POST /webhooks/twilio/sms, signed like Twilio: STOP, START,
HELP and replies, and what is refused."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact, InboundMessage, Reminder
from bot.core.runtime import Runtime
from tests.support.inbound_requests import counts, text_in

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_stop_by_text_opts_the_number_out_and_start_back_in(rt: Runtime, app: httpx.Client) -> None:
    answer = text_in(app, "stop")

    assert answer.status_code == 200 and "no more texts" in answer.text
    with rt.sessions() as session:
        assert session.scalars(select(Contact.sms_opted_out_at)).one() is not None
    assert text_in(app, "START").status_code == 200
    with rt.sessions() as session:
        assert session.scalars(select(Contact.sms_opted_out_at)).one() is None


def test_a_text_reply_is_a_reply(rt: Runtime, app: httpx.Client) -> None:
    answer = text_in(app, "Can you send me a copy of invoice 1001? I can't find it")

    assert answer.status_code == 200
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        assert (stored.channel, stored.label) == ("sms", "question")
        assert session.scalars(select(Reminder.cancel_reason)).one() == "replied"


def test_a_forged_twilio_signature_gets_401_and_changes_nothing(
    rt: Runtime, app: httpx.Client
) -> None:
    before = counts(rt)
    assert text_in(app, "STOP", signature="forged").status_code == 401
    assert counts(rt) == before
    with rt.sessions() as session:
        assert session.scalars(select(Contact.sms_opted_out_at)).one() is None


@pytest.mark.parametrize("word", ["REVOKE", "optout", "Stop."])
def test_every_stop_word_opts_out(rt: Runtime, app: httpx.Client, word: str) -> None:
    assert text_in(app, word).status_code == 200
    with rt.sessions() as session:
        assert session.scalars(select(Contact.sms_opted_out_at)).one() is not None


def test_a_retried_text_is_handled_once(rt: Runtime, app: httpx.Client) -> None:
    assert text_in(app, "I will pay on Friday").status_code == 200
    before = counts(rt)
    assert text_in(app, "I will pay on Friday").status_code == 200  # the same MessageSid
    assert counts(rt) == before
