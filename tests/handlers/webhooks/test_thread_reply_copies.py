"""A copy of the invoice from an escalation's thread: the customer asks for one by email, the
Reply form (through the real Bolt app, signed requests) lists the open invoices with both ticked,
the approver keeps one, and the send worker hands the email to a real SMTP server with that
invoice's PDF attached, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Invoice, Reminder, ReminderAttachment
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.core.vocabulary import THREAD_REPLY
from bot.reminders.flows import send_due
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
    (folder / "INV-1002.pdf").write_bytes(PDF + b"% the other one\n")
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
