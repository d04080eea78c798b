"""Replies as the webhooks receive them, for tests: a raw email behind the shared secret, a text
signed like Twilio, and the counts that say whether anything changed."""

from __future__ import annotations

import hashlib
from datetime import date
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from bot.core.models import Escalation, InboundMessage, Reminder
from bot.core.runtime import Runtime
from integrations.twilio_sms import twilio_signature

TODAY = date(2026, 3, 16)
SECRET = "inbound-secret-1"
KEY = "k" * 32
TWILIO_TOKEN = "twilio-test-token"
PUBLIC = "https://arbot.example.com"


def the_reminder(rt: Runtime) -> Reminder:
    with rt.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        session.expunge(reminder)
        return reminder


def email_reply(text: str, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "Maria Garcia <ap@ridgeline.example>")
    mail["To"] = headers.pop("To", "ar@brightwater.example")
    mail["Subject"] = headers.pop("Subject", "Re: Invoice INV-1001 is past due")
    mail["Message-ID"] = "<reply-1@ridgeline.example>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail.as_bytes()


def post_mail(app: httpx.Client, raw: bytes, secret: str | None = SECRET) -> httpx.Response:
    headers = {"Content-Type": "message/rfc822"}
    if secret == "":
        headers["Authorization"] = "Basic Og=="  # user "" and password "": not the secret
    elif secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return app.post("/webhooks/email", content=raw, headers=headers)


def counts(rt: Runtime) -> tuple[Any, ...]:
    with rt.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(InboundMessage)),
            session.scalar(select(func.count()).select_from(Escalation)),
            tuple(session.scalars(select(Reminder.state).order_by(Reminder.id))),
        )


DISPUTE = (
    "Hi, we are not paying INV-1001: the second delivery arrived damaged and we dispute the "
    "charge until it is replaced.\n\nOn Mon, Mar 16, 2026 at 9:00 AM Accounts Receivable "
    "<ar@brightwater.example> wrote:\n> Invoice INV-1001 is past due\n> Please pay\n"
)


def text_in(
    app: httpx.Client, body: str, sender: str = "+13125550142", signature: str | None = None
) -> httpx.Response:
    sid = "SM" + hashlib.md5(body.encode()).hexdigest()  # the same text twice: Twilio retrying
    form = {"From": sender, "To": "+15005550006", "Body": body, "MessageSid": sid}
    url = f"{PUBLIC}/webhooks/twilio/sms"
    return app.post(
        "/webhooks/twilio/sms",
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature or twilio_signature(TWILIO_TOKEN, url, form),
        },
    )
