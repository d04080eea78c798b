"""A copy of the invoice from an escalation's thread: the customer asks for one by email, the
Reply form (through the real Bolt app, signed requests) lists the open invoices with both ticked,
the approver keeps one, and the send worker hands the email to a real SMTP server with that
invoice's PDF attached, once. A reply whose copy cannot be had is not sent, and its thread says
which copy and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Invoice, Reminder, ReminderAttachment
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.core.vocabulary import THREAD_REPLY
from bot.escalations.reply import queue as queue_reply
from bot.reminders.flows import send_due
from bot.reminders.outbox import config_from
from integrations.base.documents import CopyFetchers
from integrations.email_out import SmtpSender
from integrations.invoice_files import InvoiceFiles
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.webhooks.test_thread_reply import (
    DAYTIME,
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
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ASKS = "Hello, could you send me a copy of invoice INV-1001? We cannot find it anywhere."


def test_the_reply_form_attaches_the_copy_the_customer_asked_for(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    app, slack = served
    clock.set(DAYTIME)
    to = f"ar+r.{token(KEY, 1, 'reply')}@brightwater.example"
    post_mail(app, email_reply(ASKS, To=to)).raise_for_status()
    escalation = _escalation(rt)
    with rt.sessions() as session:
        ids = dict(session.execute(select(Invoice.number, Invoice.id)).all())

    modal = _open_reply(slack, slack_api, escalation)
    (attach,) = [b for b in modal["blocks"] if b.get("block_id") == "attach"]
    assert attach["element"]["type"] == "checkboxes"
    offered = [o["value"] for o in attach["element"]["options"]]
    assert offered == [str(ids["INV-1001"]), str(ids["INV-1002"])]
    assert [o["value"] for o in attach["element"]["initial_options"]] == offered  # asked
    body = next(b for b in modal["blocks"] if b.get("block_id") == "body")
    suggested = body["element"]["initial_value"]
    assert "Please find attached a copy of INV-1001, INV-1002" in suggested

    values = _values("Re: INV-1001", "Here is the copy you asked for.")
    first = attach["element"]["options"][0]
    values["attach"] = {"value": {"type": "checkboxes", "selected_options": [first]}}
    slack.submit("esc_reply", modal["private_metadata"], values)
    wait_for(lambda: "by email with 1 invoice copy (PDF)" in _in_thread(slack_api, escalation))
    with rt.sessions() as session:
        reply = session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).one()
        marked = session.scalars(
            select(ReminderAttachment.invoice_id).where(ReminderAttachment.reminder_id == reply.id)
        ).all()
    assert marked == [ids["INV-1001"]]

    folder = tmp_path / "copies"
    folder.mkdir()
    (folder / "INV-1001.pdf").write_bytes(PDF)
    copies = CopyFetchers(None, InvoiceFiles(folder))
    senders = {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)}
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    send_due(rt, senders, chat, copies)
    send_due(rt, senders, chat, copies)  # nothing more
    (mail,) = smtp.mailbox.messages
    assert mail["In-Reply-To"] == "<reply-1@ridgeline.example>"
    files = [
        (part.get_content_type(), part.get_filename(), part.get_payload(decode=True))
        for part in mail.walk()
        if part.get_content_disposition() == "attachment"
    ]
    assert files == [("application/pdf", "INV-1001.pdf", PDF)]

    # A second reply (queued as the form's submission queues it) with a copy that cannot be had:
    # it is not sent, and the thread says which copy and why.
    with rt.writing() as session:
        again = queue_reply(
            session,
            escalation.id,
            "U0APPROVER",
            "Re: INV-1002",
            "And the other one.",
            "V0SECOND",
            clock.now(),
            rt.today(),
            config_from(rt.settings).window,
            rt.settings.business_name,
            attach=[ids["INV-1002"]],
        )
    send_due(rt, senders, chat, copies)
    assert len(smtp.mailbox.messages) == 1
    with rt.sessions() as session:
        held = session.get(Reminder, again.reminder_id)
    assert held is not None and held.cancel_reason == "no_invoice_copy"
    thread = _in_thread(slack_api, escalation)
    assert "reply to ap@ridgeline.example was not sent: the copy of invoice INV-1002 in" in thread
    assert thread.count("was not sent") == 1
