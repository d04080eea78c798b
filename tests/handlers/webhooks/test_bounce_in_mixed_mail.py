"""A mail gateway's delivery report that is not a multipart/report (McAfee Email Gateway writes
multipart/mixed from `<>`, the status part inside) through POST /webhooks/email: a 5.x.x failure
marks the address bouncing and fails the reminder, where it used to be kept as a reply nobody
could match; a 4.x.x delay changes nothing (RULES C6)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, InboundMessage, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from tests.support.inbound_requests import KEY, post_mail, the_reminder

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def _sent(rt: Runtime) -> Reminder:
    reminder = the_reminder(rt)
    with rt.writing() as session:
        session.get(Reminder, reminder.id).state = "sent"  # type: ignore[union-attr]
    return reminder


def _gateway_notice(reminder: Reminder, action: str, status: str, words: str) -> bytes:
    return (
        f"To: <bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example>\r\n"
        "From: <>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: Multipart/Mixed; boundary="--B"\r\n'
        "X-NAI-Header: Modified by McAfee Email Gateway (4500)\r\n"
        "Subject: Delivery Status\r\n\r\n"
        "----B\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\n"
        "    --- The following addresses had delivery problems ---\r\n\r\n"
        f"<ap@ridgeline.example>   (ap@ridgeline.example... {words})\r\n\r\n"
        '----B\r\nContent-Type: message/delivery-status; name="deliverystatus.txt"\r\n'
        'Content-Disposition: attachment; filename="deliverystatus.txt"\r\n\r\n'
        f"Original-Recipient: <ap@ridgeline.example>\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} ap@ridgeline.example... {words}\r\n\r\n"
        "----B\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        f"Message-ID: {reminder.message_id}\r\nTo: ap@ridgeline.example\r\n"
        "From: ar@brightwater.example\r\nSubject: Invoice INV-1001 is past due\r\n\r\n"
        "Please pay.\r\n"
        "----B--\r\n"
    ).encode()


def _after(rt: Runtime, reminder: Reminder) -> tuple[str, Contact, list[str], InboundMessage]:
    with rt.sessions() as session:
        state = session.scalars(select(Reminder.state).where(Reminder.id == reminder.id)).one()
        contact = session.scalars(select(Contact)).one()
        reasons = list(session.scalars(select(Escalation.reason)))
        stored = session.scalars(select(InboundMessage)).one()
        session.expunge_all()
    return state, contact, reasons, stored


def test_a_gateways_failure_report_in_a_mixed_message_marks_the_address_bouncing(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = _sent(rt)

    answer = post_mail(app, _gateway_notice(reminder, "failed", "5.1.1", "No such user"))

    assert answer.json()["status"] == "bounce"
    state, contact, reasons, stored = _after(rt, reminder)
    assert state == "failed" and contact.email_unusable_at is not None
    assert reasons == ["send_failed"]
    assert (stored.label, stored.reminder_id, stored.awaiting_slack) == (
        "bounce",
        reminder.id,
        False,
    )


def test_a_gateways_delay_report_in_a_mixed_message_changes_nothing(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = _sent(rt)

    answer = post_mail(app, _gateway_notice(reminder, "delayed", "4.2.2", "Mailbox full"))

    assert answer.json()["status"] == "automatic"
    state, contact, reasons, _ = _after(rt, reminder)
    assert (state, contact.email_unusable_at, reasons) == ("sent", None, [])
