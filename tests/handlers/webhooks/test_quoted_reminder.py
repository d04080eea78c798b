"""A reply that quotes our reminder below "we will pay Friday", through POST /webhooks/email:
whatever language the customer's mail client labelled the quote in, the reminder's own words
(its "doesn't match", its due dates) are not read as the customer's. A promise, not a dispute."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import InboundMessage, Invoice
from bot.core.runtime import Runtime
from tests.support.inbound_requests import email_reply, post_mail, the_reminder
from tests.support.quoted_replies import (
    ATTRIBUTIONS,
    OUTLOOK_FIELDS,
    UNKNOWN_FIELDS,
    gmail_quote,
    outlook_quote,
)

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

SENT_ID = "<arbot.1.0123456789abcdef@brightwater.example>"  # the reminder's, as the fixture stores
FRIDAY = date(2026, 3, 20)  # the Friday after TODAY (Monday 16 March 2026)
UNKNOWN = "Welsh"  # a language arbot knows no header word of: only our text marks the quote
LANGUAGES = [
    "English",
    "French",
    "German",
    "Dutch",
    "Italian",
    "Spanish",
    "Portuguese",
    "Swedish",
    "Danish",
    "Polish",
    "Russian",
    "Turkish",
    "Japanese",
    "Chinese",
]


def _promise_kept(rt: Runtime, app: httpx.Client, body: str) -> InboundMessage:
    answer = post_mail(app, email_reply(body, In_Reply_To=SENT_ID))
    assert answer.json() == {"status": "reply", "label": "promise_to_pay"}, body
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        assert not any(session.scalars(select(Invoice.disputed)))
        session.expunge(stored)
    assert stored.promise_date == FRIDAY
    assert "doesn't match" not in stored.text
    return stored


@pytest.mark.parametrize("language", [*LANGUAGES, UNKNOWN])
def test_we_will_pay_friday_above_outlooks_quote_is_a_promise_in_every_language(
    rt: Runtime, app: httpx.Client, language: str
) -> None:
    sent = the_reminder(rt).body_text
    assert sent and "doesn't match" in sent  # the reminder carries words of a dispute
    fields = UNKNOWN_FIELDS if language == UNKNOWN else OUTLOOK_FIELDS[language]
    body = outlook_quote("We will pay Friday.", fields, sent, wrap=76, rule=language != UNKNOWN)
    _promise_kept(rt, app, body)


@pytest.mark.parametrize("language", ["Russian", "Polish", "Japanese", "Chinese", "Greek"])
def test_we_will_pay_friday_above_a_gmail_quote_is_a_promise(
    rt: Runtime, app: httpx.Client, language: str
) -> None:
    sent = the_reminder(rt).body_text
    assert sent
    _promise_kept(rt, app, gmail_quote("We will pay Friday.", ATTRIBUTIONS[language], sent))


def test_the_promise_date_never_comes_from_our_quoted_text(rt: Runtime, app: httpx.Client) -> None:
    sent = the_reminder(rt).body_text
    assert sent and "March 9, 2026" in sent  # a date the promise must not take
    body = outlook_quote("We will pay this, sorry.", UNKNOWN_FIELDS, sent, wrap=70, rule=False)
    answer = post_mail(app, email_reply(body, In_Reply_To=SENT_ID))
    assert answer.json()["label"] == "promise_to_pay"
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        assert stored.promise_date is None  # they named no date; ours is not theirs
        assert set(session.scalars(select(Invoice.promise_date))) == {None}
