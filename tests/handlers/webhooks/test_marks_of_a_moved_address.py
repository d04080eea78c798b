"""An opt-out, a spam complaint, a bounce or a failure report that arrives after the ledger moved
the reminder's contact to another address (or number), for a message sent before the move, is
about the old address: the contact, now at the new one, is left alone, the mark is recorded
against the old address, and it comes back with it when the ledger gives it again (RULES A7, C6)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Contact, Escalation, Event, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.escalations.thread import history_of
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from integrations.twilio_sms import twilio_signature
from tests.support.inbound_requests import (
    KEY,
    PUBLIC,
    TWILIO_TOKEN,
    email_reply,
    post_mail,
    the_reminder,
)
from tests.support.ledger_files import row, write

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

OLD, NEW = "ap@ridgeline.example", "billing@ridgeline.example"
OLD_PHONE, NEW_PHONE = "+13125550142", "+13125550199"
ORIGINAL_ID = "<arbot.1.0123456789abcdef@brightwater.example>"


def _import(rt: Runtime, tmp_path: Path, name: str, **fields: str) -> None:
    """The fixture's ledger again, with these fields changed (the contact's address, number)."""
    rows = [
        row(invoice_number="INV-1001", due_date="2026-03-09", **fields),
        row(
            invoice_number="INV-1002",
            amount="300.00",
            balance="300.00",
            due_date="2026-03-09",
            **fields,
        ),
    ]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / name, rows)), rt.clock.now())


def _sent_then_moved(
    rt: Runtime, clock: FixedClock, tmp_path: Path, channel: str = "email", **moved: str
) -> Reminder:
    """The fixture's reminder sent (by `channel`), then an hour later an import that moves its
    contact (to billing@, or to the `moved` fields)."""
    reminder = the_reminder(rt)
    with rt.writing() as session:
        stored = session.get(Reminder, reminder.id)
        assert stored is not None
        stored.state, stored.sent_at, stored.channel = "sent", clock.now(), channel
        stored.provider_message_id = "SM1" if channel == "sms" else None
    clock.advance(timedelta(hours=1))
    _import(rt, tmp_path, "moved.csv", **(moved or {"email": NEW}))
    clock.advance(timedelta(hours=1))
    return reminder


def _contact(rt: Runtime) -> Contact:
    with rt.sessions() as session:
        contact = session.scalars(select(Contact)).one()
        session.expunge(contact)
        return contact


def _marked(rt: Runtime, kind: str) -> list[dict[str, object]]:
    with rt.sessions() as session:
        return [
            payload
            for payload in session.scalars(select(Event.payload).where(Event.kind == kind))
            if payload.get("address")
        ]


def _unsubscribe(app: httpx.Client, reminder: Reminder) -> None:
    url = f"/unsubscribe/{token(KEY, reminder.id, 'unsubscribe')}"
    assert app.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_a_one_click_unsubscribe_after_the_move_opts_out_the_old_address_not_the_new_one(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)
    assert _contact(rt).email == NEW

    _unsubscribe(app, reminder)
    _unsubscribe(app, reminder)  # a second click changes nothing more

    assert _contact(rt).email_opted_out_at is None  # billing@ asked nothing
    assert [(p["address"], p["how"]) for p in _marked(rt, "contact.opted_out")] == [
        (OLD, "one-click")
    ]


def test_the_old_addresss_opt_out_comes_back_when_the_ledger_gives_it_again(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)
    _unsubscribe(app, reminder)
    clock.advance(timedelta(hours=1))

    _import(rt, tmp_path, "back.csv", email=OLD)

    contact = _contact(rt)
    assert contact.email == OLD and contact.email_opted_out_at is not None
    _import(rt, tmp_path, "again.csv", email=NEW)  # and the new address still has no mark
    assert _contact(rt).email_opted_out_at is None


def test_a_spam_complaint_after_the_move_opts_out_the_old_address_and_tells_a_person(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)
    arf = (
        "From: Abuse Desk <abuse@isp.example>\r\n"
        f"To: bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example\r\n"
        "Subject: Abuse report\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {OLD}\r\n"
        f"--F\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: {ORIGINAL_ID}\r\nTo: {OLD}\r\n"
        "Subject: Invoice INV-1001 is past due\r\n\r\nPlease pay.\r\n--F--\r\n"
    )

    assert post_mail(app, arf.encode()).json()["status"] == "bounce"

    assert _contact(rt).email_opted_out_at is None
    assert [p["address"] for p in _marked(rt, "contact.opted_out")] == [OLD]
    with rt.sessions() as session:
        assert list(session.scalars(select(Escalation.reason))) == ["spam complaint"]
    clock.advance(timedelta(hours=1))
    _import(rt, tmp_path, "back.csv", email=OLD)
    assert _contact(rt).email_opted_out_at is not None


def _bounce(reminder: Reminder, failed: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ORIGINAL_ID}\r\n"
        "Subject: Invoice INV-1001 is past due\r\n--B--\r\n"
    ).encode()


def test_a_bounce_after_the_move_marks_the_old_address_fails_the_reminder_and_escalates(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)

    assert post_mail(app, _bounce(reminder, OLD)).json()["status"] == "bounce"

    assert _contact(rt).email_unusable_at is None  # billing@ did not bounce
    assert [p["address"] for p in _marked(rt, "contact.bouncing")] == [OLD]
    with rt.sessions() as session:
        assert session.scalars(select(Reminder.state)).one() == "failed"
        assert list(session.scalars(select(Escalation.reason))) == ["send_failed"]
        history = [line.text for line in history_of(session, reminder.customer_id, "UTC")]
    assert f"bouncing: {OLD}, a former address" in history  # the thread says whose
    clock.advance(timedelta(hours=1))
    _import(rt, tmp_path, "back.csv", email=OLD)
    assert _contact(rt).email_unusable_at is not None  # ap@ bounced: it comes back marked


def test_a_bounce_naming_the_new_address_as_its_failing_recipient_marks_the_contact(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)

    assert post_mail(app, _bounce(reminder, NEW)).json()["status"] == "bounce"

    assert _contact(rt).email_unusable_at is not None
    assert _marked(rt, "contact.bouncing") == []


def test_a_reply_from_the_old_address_asking_to_stop_opts_out_that_address_only(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    reminder = _sent_then_moved(rt, clock, tmp_path)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example"
    mail = email_reply("Please stop emailing me.", To=to, From=f"Maria Garcia <{OLD}>")

    assert post_mail(app, mail).json() == {"status": "reply", "label": "opt_out"}

    assert _contact(rt).email_opted_out_at is None
    assert [(p["address"], p["how"]) for p in _marked(rt, "contact.opted_out")] == [
        (OLD, "asked in a reply")
    ]
    clock.advance(timedelta(hours=1))
    _import(rt, tmp_path, "back.csv", email=OLD)
    assert _contact(rt).email_opted_out_at is not None


def test_a_twilio_failure_after_a_phone_change_leaves_the_new_number_usable(
    rt: Runtime, app: httpx.Client, clock: FixedClock, tmp_path: Path
) -> None:
    _sent_then_moved(rt, clock, tmp_path, channel="sms", phone=NEW_PHONE)
    assert _contact(rt).phone == NEW_PHONE
    form = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30006"}
    signature = twilio_signature(TWILIO_TOKEN, f"{PUBLIC}/webhooks/twilio/status", form)

    answer = app.post(
        "/webhooks/twilio/status",
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )

    assert answer.status_code == 204
    assert _contact(rt).sms_unusable_at is None  # the new number was never tried
    assert [(p["channel"], p["address"]) for p in _marked(rt, "contact.bouncing")] == [
        ("sms", OLD_PHONE)
    ]
    with rt.sessions() as session:
        assert session.scalars(select(Reminder.state)).one() == "failed"
        assert list(session.scalars(select(Escalation.reason))) == ["send_failed"]
