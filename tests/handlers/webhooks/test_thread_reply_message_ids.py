"""A reply from an escalation's thread to a customer's email whose Message-ID cannot be written in
a header (letters outside ASCII, which some mail systems put there): it goes out all the same, in
the conversation as far as the ids that can be written carry it. Through the real Bolt app (signed
requests), a real SMTP server and the recording Slack fake."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.core.vocabulary import THREAD_REPLY
from tests.handlers.webhooks.test_thread_reply import (
    DAYTIME,
    SENT_ID,
    _escalation,
    _in_thread,
    _open_reply,
    _values,
    reply_settings,
    rt,
    served,
    smtp,
)
from tests.handlers.webhooks.test_thread_reply_outcome import SENT_LINE, _send
from tests.support.inbound_requests import DISPUTE, KEY, email_reply, post_mail
from tests.support.slack_requests import SlackRequests, wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

__all__ = ["reply_settings", "rt", "served", "smtp"]  # the fixtures this file shares


def test_a_reply_to_a_message_whose_id_is_not_ascii_is_sent_without_that_id(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    app, slack = served
    clock.set(DAYTIME)
    to = f"ar+r.{token(KEY, 1, 'reply')}@brightwater.example"
    raw = email_reply(DISPUTE, To=to, References=f"{SENT_ID} <MARK-0@ridgeline.example>")
    raw = raw.replace(b"<reply-1@", b"<MARK-1@").replace(b"MARK", "réponse".encode())
    assert post_mail(app, raw).json()["label"] == "dispute"
    escalation = _escalation(rt)
    modal = _open_reply(slack, slack_api, escalation)
    slack.submit("esc_reply", modal["private_metadata"], _values("Re: INV-1001", "Noted."))
    wait_for(lambda: "replied to ap@ridgeline.example" in _in_thread(slack_api, escalation))

    _send(rt, smtp, slack_api)

    with rt.sessions() as session:
        state = session.scalar(select(Reminder.state).where(Reminder.step_key == THREAD_REPLY))
    assert state == "sent"
    assert SENT_LINE in _in_thread(slack_api, escalation)
    mail = smtp.mailbox.messages[0]
    assert mail["In-Reply-To"] is None  # the message it answers has no id that can be written
    assert mail["References"].split() == [SENT_ID]
