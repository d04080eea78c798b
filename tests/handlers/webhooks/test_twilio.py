"""A text through the real ASGI app: POST /webhooks/twilio/sms, signed like Twilio: STOP, START,
HELP and replies, and what is refused."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Contact, InboundMessage, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from integrations.twilio_sms import twilio_signature
from tests.support.inbound_requests import PUBLIC, TWILIO_TOKEN, counts, text_in
from tests.support.serving import serve

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


def test_a_text_refused_because_arbot_public_url_is_unset_logs_the_url_it_checked_and_what_to_set(
    inbound_settings: Settings, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind a proxy that ends TLS (its forwarded headers not trusted), the request reads
    http:// where Twilio signed the https:// address it called."""
    runtime = start(inbound_settings.model_copy(update={"public_url": None}), clock=clock)
    form = {"From": "+13125550142", "Body": "I dispute invoice 1001", "MessageSid": "SM1"}
    signature = twilio_signature(TWILIO_TOKEN, f"{PUBLIC}/webhooks/twilio/sms", form)
    caplog.set_level(logging.INFO)
    try:
        with serve(runtime) as url:
            answer = httpx.post(
                f"{url}/webhooks/twilio/sms",
                content=urlencode(form),
                headers={
                    "Host": "arbot.example.com",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            )
    finally:
        runtime.close()
    assert answer.status_code == 401
    (warning,) = [r for r in caplog.records if r.name == "handlers.webhooks.twilio"]
    assert warning.levelno == logging.WARNING
    said = warning.getMessage()
    assert "http://arbot.example.com/webhooks/twilio/sms" in said
    assert "set ARBOT_PUBLIC_URL to the address Twilio calls" in said
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert signature not in logged and "+13125550142" not in logged
