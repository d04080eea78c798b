"""Delivery reports of every shape through POST /webhooks/email: a plain-text bounce, a report that
gave up with a 4.x.x code or "expired" or an empty status block, a refusal for our own sending
domain (DMARC) and a spam complaint (ARF): what happens to the reminder, the address and Slack."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from tests.support.fake_slack import validate_blocks
from tests.support.inbound_requests import KEY, post_mail, the_reminder

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

ORIGINAL_ID = "<arbot.1.0123456789abcdef@brightwater.example>"


def _sent(rt: Runtime) -> Reminder:
    reminder = the_reminder(rt)
    with rt.writing() as session:
        session.get(Reminder, reminder.id).state = "sent"  # type: ignore[union-attr]
    return reminder


def _to(reminder: Reminder) -> str:
    return f"bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example"


def _dsn(reminder: Reminder, status_block: str, notice: str = "Delivery failed.") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: {_to(reminder)}\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain\r\n\r\n{notice}\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"{status_block}"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ORIGINAL_ID}\r\nTo: ap@ridgeline.example\r\n"
        "Subject: Invoice INV-1001 is past due\r\n"
        "--B--\r\n"
    ).encode()


def _state(rt: Runtime, reminder: Reminder) -> tuple[str, Contact, list[Escalation]]:
    with rt.sessions() as session:
        after = session.get(Reminder, reminder.id)
        assert after is not None
        contact = session.scalars(select(Contact)).one()
        escalations = list(session.scalars(select(Escalation)))
        session.expunge_all()
    return after.state, contact, escalations


EXIM_PLAIN = (
    "From: Mail Delivery System <Mailer-Daemon@mx.example>\r\n"
    "To: {to}\r\n"
    "Subject: Mail delivery failed: returning message to sender\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "X-Failed-Recipients: ap@ridgeline.example\r\n"
    "\r\n"
    "This message was created automatically by mail delivery software.\r\n\r\n"
    "A message that you sent could not be delivered to one or more of its\r\n"
    "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
    "  ap@ridgeline.example\r\n"
    "    SMTP error from remote mail server after RCPT TO:<ap@ridgeline.example>:\r\n"
    "    550 5.1.1 <ap@ridgeline.example>: Recipient address rejected: User unknown\r\n\r\n"
    "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
    "Message-ID: {original}\r\n"
    "To: ap@ridgeline.example\r\n"
    "Subject: Invoice INV-1001 is past due\r\n"
)


def test_a_plain_text_exim_bounce_marks_the_address_and_fails_the_reminder(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = _sent(rt)
    raw = EXIM_PLAIN.format(to=_to(reminder), original=ORIGINAL_ID).encode()

    assert post_mail(app, raw).json()["status"] == "bounce"

    state, contact, escalations = _state(rt, reminder)
    assert state == "failed"
    assert contact.email_unusable_at is not None
    assert [e.reason for e in escalations] == ["send_failed"]
    assert "ap@ridgeline.example" in (escalations[0].detail or "")


@pytest.mark.parametrize(
    "block",
    [
        # gave up after retrying: a 4.x.x code with Action: failed
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: failed\r\nStatus: 4.4.7\r\n"
        "Diagnostic-Code: smtp; 421 4.4.7 message expired in queue\r\n",
        # "expired" and an empty Status
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: expired\r\nStatus: \r\n"
        "Diagnostic-Code: Connection timed out\r\n",
        # oddly spaced fields
        "Final-Recipient : rfc822;ap@ridgeline.example\r\nAction : failed\r\nStatus : 5.0.0\r\n",
        # an empty status block: only the words say it failed
        "",
    ],
    ids=["failed-4xx", "expired-empty-status", "odd-spacing", "empty-block"],
)
def test_a_report_that_says_not_delivered_fails_the_reminder_whatever_its_code(
    rt: Runtime, app: httpx.Client, block: str
) -> None:
    reminder = _sent(rt)
    notice = "Your message to ap@ridgeline.example could not be delivered: the mail system gave up."

    assert post_mail(app, _dsn(reminder, block, notice)).json()["status"] == "bounce"

    state, contact, _ = _state(rt, reminder)
    assert state == "failed"
    assert contact.email_unusable_at is not None


def test_a_delay_notice_leaves_the_reminder_sent(rt: Runtime, app: httpx.Client) -> None:
    reminder = _sent(rt)
    block = (
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        "Will-Retry-Until: Fri, 20 Mar 2026 09:00:00 +0000\r\n"
    )
    notice = "Delivery to ap@ridgeline.example is delayed. The mail system will keep trying."

    assert post_mail(app, _dsn(reminder, block, notice)).json()["status"] == "automatic"

    state, contact, escalations = _state(rt, reminder)
    assert (state, contact.email_unusable_at, escalations) == ("sent", None, [])


def test_a_dmarc_refusal_tells_slack_what_to_fix_and_leaves_the_address_alone(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    reminder = _sent(rt)
    block = (
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: failed\r\nStatus: 5.7.26\r\n"
        "Diagnostic-Code: smtp; 550-5.7.26 Unauthenticated email from brightwater.example is "
        "not accepted due to domain's DMARC policy.\r\n"
    )

    assert post_mail(app, _dsn(reminder, block)).json()["status"] == "bounce"

    state, contact, escalations = _state(rt, reminder)
    assert state == "failed"  # it did not arrive
    assert contact.email_unusable_at is None and contact.email_opted_out_at is None
    assert [e.reason for e in escalations] == ["our email was refused"]
    escalation = escalations[0]
    assert "SPF, DKIM and DMARC" in (escalation.detail or "")
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert validate_blocks(parent["blocks"]) == []
    assert "DMARC" in json.dumps(parent["blocks"])


ARF = (
    "From: Feedback Loop <fbl@isp.example>\r\n"
    "To: {to}\r\n"
    "Subject: Abuse report\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
    "--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
    "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
    "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
    "Original-Rcpt-To: ap@ridgeline.example\r\n"
    "--F\r\nContent-Type: message/rfc822\r\n\r\n"
    "Message-ID: {original}\r\nTo: ap@ridgeline.example\r\n"
    "Subject: Invoice INV-1001 is past due\r\n\r\nPlease pay.\r\n"
    "--F--\r\n"
)


def test_a_spam_complaint_opts_the_address_out_of_email_and_tells_slack(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    reminder = _sent(rt)
    raw = ARF.format(to=_to(reminder), original=ORIGINAL_ID).encode()

    assert post_mail(app, raw).json()["status"] == "bounce"

    state, contact, escalations = _state(rt, reminder)
    assert state == "sent"  # it was delivered
    assert contact.email_opted_out_at is not None and contact.email_unusable_at is None
    assert [e.reason for e in escalations] == ["spam complaint"]
    escalation = escalations[0]
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert validate_blocks(parent["blocks"]) == []
    assert "marked our reminder as spam" in json.dumps(parent["blocks"])
