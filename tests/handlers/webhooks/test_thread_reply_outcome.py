"""What became of a reply written from an escalation's thread is said in that thread: sent (to
whom, at what time) once the send worker hands it to the mail server, or not delivered when the
server refuses it or it bounces later (a report through POST /webhooks/email); and the customer's
answer to it comes back to that same thread even after the escalation was resolved. Through the
real Bolt app (signed requests), a real SMTP server and the recording Slack fake."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.core.vocabulary import THREAD_REPLY
from bot.escalations import service
from bot.reminders.flows import send_due
from integrations.email_out import SmtpSender
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.webhooks.test_thread_reply import (
    DAYTIME,
    _disputed,
    _escalation,
    _in_thread,
    _open_reply,
    _values,
    reply_settings,
    rt,
    served,
    smtp,
)
from tests.support.inbound_requests import KEY, email_reply, post_mail
from tests.support.slack_requests import SlackRequests, wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

__all__ = ["reply_settings", "rt", "served", "smtp"]  # the fixtures this file shares
SENT_LINE = "<@U0APPROVER>'s reply was sent to ap@ridgeline.example at 12:00 EDT."


def _reply_written(
    rt: Runtime, served: tuple[httpx.Client, SlackRequests], slack_api: Any
) -> tuple[Escalation, Reminder]:
    _, slack = served
    escalation = _disputed(rt, served)
    modal = _open_reply(slack, slack_api, escalation)
    slack.submit("esc_reply", modal["private_metadata"], _values("Re: INV-1001", "Noted."))
    wait_for(lambda: "replied to ap@ridgeline.example" in _in_thread(slack_api, escalation))
    with rt.sessions() as session:
        reply = session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).one()
        session.expunge(reply)
    return escalation, reply


def _send(rt: Runtime, smtp: SmtpServer, slack_api: Any) -> None:
    senders = {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)}
    send_due(rt, senders, SlackChat(web_client("xoxb-test", slack_api.url)))


def test_the_thread_says_the_reply_was_sent_and_the_answer_comes_back_after_a_resolve(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    app, _ = served
    clock.set(DAYTIME)  # 16:00 UTC: 12:00 in New York, the business's time
    escalation, reply = _reply_written(rt, served, slack_api)
    assert SENT_LINE not in _in_thread(slack_api, escalation)  # queued is not sent

    _send(rt, smtp, slack_api)
    _send(rt, smtp, slack_api)  # nothing more to send: said once

    assert _in_thread(slack_api, escalation).count(SENT_LINE) == 1
    assert len(smtp.mailbox.messages) == 1
    mail = smtp.mailbox.messages[0]
    assert mail["Reply-To"] == f"ar+r.{token(KEY, reply.id, 'reply')}@brightwater.example"

    with rt.writing() as session:  # the account owner closes the escalation after replying
        service.resolve(session, escalation.id, "U0APPROVER", "answered", clock.now())
    post_mail(
        app,
        email_reply(
            "Thanks, the replacement arrived today. We will pay INV-1001 by the 30th.",
            To=str(mail["Reply-To"]),
            Subject="Re: INV-1001",
        ).replace(b"<reply-1@", b"<reply-2@"),
    )

    wait_for(lambda: "replacement arrived today" in _in_thread(slack_api, escalation))
    after = _escalation(rt)
    assert (after.id, after.state) == (escalation.id, "open")
    assert after.slack_thread_ts == escalation.slack_thread_ts
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 1


def test_a_reply_the_mail_server_refuses_is_said_in_the_thread(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    clock.set(DAYTIME)
    escalation, reply = _reply_written(rt, served, slack_api)
    smtp.mailbox.refuse["ap@ridgeline.example"] = "550 5.1.1 <ap@ridgeline.example>: No such user"

    _send(rt, smtp, slack_api)

    with rt.sessions() as session:
        assert session.scalar(select(Reminder.state).where(Reminder.id == reply.id)) == "failed"
    thread = _in_thread(slack_api, escalation)
    assert "<@U0APPROVER>'s reply to ap@ridgeline.example was not delivered: " in thread
    assert "No such user" in thread and "was sent to" not in thread


def test_a_reply_that_bounces_later_is_said_in_the_thread(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    app, _ = served
    clock.set(DAYTIME)
    escalation, reply = _reply_written(rt, served, slack_api)
    _send(rt, smtp, slack_api)
    assert SENT_LINE in _in_thread(slack_api, escalation)

    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: bounce+{token(KEY, reply.id, 'bounce')}@brightwater.example\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "Message-ID: <dsn-1@mx.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n\r\n"
        "--B--\r\n"
    ).encode()
    assert post_mail(app, dsn).status_code == 200

    wait_for(lambda: "was not delivered" in _in_thread(slack_api, escalation))
    thread = _in_thread(slack_api, escalation)
    assert "<@U0APPROVER>'s reply to ap@ridgeline.example was not delivered: bounced: " in thread
    assert thread.count("was not delivered") == 1
