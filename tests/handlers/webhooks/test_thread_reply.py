"""Reply from an escalation's thread, end to end: the customer's dispute opens a thread (POST
/webhooks/email), an approver clicks Reply and submits the form through the real Bolt app
(signed requests), the send worker hands the email to a real SMTP server (aiosmtpd) in the same
conversation, and the customer's answer to it comes back into the same Slack thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.core.clock import FixedClock
from bot.core.models import Contact, Customer, Escalation, Event, Invoice, Reminder, ThreadReply
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings
from bot.core.tokens import token
from bot.core.vocabulary import THREAD_REPLY
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders.outbox import LEASE
from bot.reminders.sending import flush
from integrations.csv_ledger import read_ledger_csv
from integrations.email_out import SmtpSender
from tests.support.fake_http import local_client
from tests.support.fake_slack import validate_blocks
from tests.support.inbound_requests import DISPUTE, KEY, SECRET, TODAY, email_reply, post_mail
from tests.support.ledger_files import row, write
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE, SlackRequests, wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

SENT_ID = "<arbot.1.0123456789abcdef@brightwater.example>"
DAYTIME = datetime(2026, 3, 16, 16, 0, tzinfo=UTC)  # 11:00 in Chicago, the contact's zone
NIGHT = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)  # 22:00 on Sunday in Chicago


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def reply_settings(database_url: str, slack_api: Any, smtp: SmtpServer) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        escalation_channel="C0ESCALATE",
        approvers=["U0APPROVER"],
        inbound_email_secret=SECRET,
        secret_key=KEY,
        from_email="ar@brightwater.example",
        business_name="Brightwater Supply Co.",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
    )


@pytest.fixture
def rt(reply_settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = start(reply_settings, clock=clock)
    rows = [
        row(invoice_number="INV-1001", due_date="2026-03-09"),
        row(invoice_number="INV-1002", amount="300.00", balance="300.00", due_date="2026-03-09"),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
        run_plan(session, PlanRules.from_settings(reply_settings), TODAY, clock.now(), False)
        reminder = session.scalars(select(Reminder)).one()
        reminder.state, reminder.message_id, reminder.sent_at = "sent", SENT_ID, clock.now()
    yield runtime
    runtime.close()


@pytest.fixture
def served(rt: Runtime) -> Iterator[tuple[httpx.Client, SlackRequests]]:
    with serve(rt) as url, local_client(base_url=url, timeout=PATIENCE) as client:
        slack = SlackRequests(url)
        yield client, slack
        slack.close()


def _escalation(rt: Runtime) -> Escalation:
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def _in_thread(slack_api: Any, escalation: Escalation) -> str:
    return json.dumps(
        [
            c
            for c in slack_api.calls("chat.postMessage")
            if c.get("thread_ts") == escalation.slack_thread_ts
        ]
    )


def _disputed(rt: Runtime, served: tuple[httpx.Client, SlackRequests]) -> Escalation:
    app, _ = served
    to = f"ar+r.{token(KEY, 1, 'reply')}@brightwater.example"
    assert post_mail(app, email_reply(DISPUTE, To=to)).json()["label"] == "dispute"
    escalation = _escalation(rt)
    assert escalation.slack_thread_ts
    return escalation


def _open_reply(slack: SlackRequests, slack_api: Any, escalation: Escalation) -> dict[str, Any]:
    slack.click("esc_reply", str(escalation.id), channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("views.open"))
    modal: dict[str, Any] = slack_api.calls("views.open")[-1]["view"]
    assert validate_blocks(modal["blocks"]) == []
    return modal


def _values(subject: str, text: str) -> dict[str, Any]:
    return {
        "subject": {"value": {"type": "plain_text_input", "value": subject}},
        "body": {"value": {"type": "plain_text_input", "value": text}},
    }


def test_a_reply_goes_out_once_in_the_conversation_and_the_answer_comes_back_to_the_thread(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    app, slack = served
    clock.set(DAYTIME)
    escalation = _disputed(rt, served)
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert validate_blocks(parent["blocks"]) == []
    card = json.dumps(parent["blocks"])
    assert "Maria Garcia" in card and "ap@ridgeline.example" in card and "+13125550142" in card
    assert '"action_id": "esc_reply"' in card and '"action_id": "esc_sent"' in card

    modal = _open_reply(slack, slack_api, escalation)
    fields = {b.get("block_id"): b for b in modal["blocks"]}
    suggested = fields["body"]["element"]["initial_value"]
    assert "noted your dispute" in suggested and "INV-1001" in suggested  # for the label
    assert fields["subject"]["element"]["initial_value"] == "Re: Invoice INV-1001 is past due"

    text = suggested + "\nWe are checking the delivery record today."
    for _ in range(2):  # a double submit: one reply
        answer = slack.submit("esc_reply", modal["private_metadata"], _values("Re: INV-1001", text))
        assert answer.status_code == 200
    wait_for(lambda: "replied to ap@ridgeline.example" in _in_thread(slack_api, escalation))

    report = flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})
    again = flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})

    assert len(report.sent) == 1 and again.sent == []
    assert len(smtp.mailbox.messages) == 1
    mail = smtp.mailbox.messages[0]
    with rt.sessions() as session:
        reply = session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).one()
        assert reply.state == "sent"
        assert session.scalar(select(func.count()).select_from(ThreadReply)) == 1
        written = session.scalars(select(Event).where(Event.kind == "reply.written")).one()
        assert written.actor == "U0APPROVER"
    assert mail["To"] == "Maria Garcia <ap@ridgeline.example>"
    assert mail["In-Reply-To"] == "<reply-1@ridgeline.example>"
    assert mail["References"].split() == ["<reply-1@ridgeline.example>"]
    assert mail["Reply-To"] == f"ar+r.{token(KEY, reply.id, 'reply')}@brightwater.example"
    assert mail["Auto-Submitted"] is None  # a person wrote it
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "checking the delivery record" in body and "unsubscribe" in body

    answer_text = "Thanks, the replacement arrived today. We will pay INV-1001 by the 30th."
    post_mail(
        app,
        email_reply(
            answer_text,
            To=str(mail["Reply-To"]),
            In_Reply_To=str(mail["Message-ID"]),
            Subject="Re: INV-1001",
        ).replace(b"<reply-1@", b"<reply-2@"),
    )
    assert len(slack_api.calls("chat.postMessage")) > 0
    wait_for(lambda: "replacement arrived today" in _in_thread(slack_api, escalation))
    assert _escalation(rt).slack_thread_ts == escalation.slack_thread_ts
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 1


def test_at_night_the_reply_is_queued_for_the_morning_and_the_thread_says_when(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    _, slack = served
    clock.set(NIGHT)
    escalation = _disputed(rt, served)
    modal = _open_reply(slack, slack_api, escalation)
    assert "queued and goes out Mon 16 Mar 09:00 CDT their time" in json.dumps(modal)

    slack.submit("esc_reply", modal["private_metadata"], _values("Re: INV-1001", "Noted, thanks."))
    wait_for(lambda: "queued for Mon 16 Mar 09:00 CDT" in _in_thread(slack_api, escalation))
    report = flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})
    assert report.sent == [] and smtp.mailbox.messages == []
    with rt.sessions() as session:
        waiting = session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).one()
    assert waiting.state == "approved"
    assert waiting.send_after == datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # 09:00 in Chicago


def test_an_opted_out_contact_gets_no_reply_and_the_form_says_so(
    rt: Runtime, served: tuple[httpx.Client, SlackRequests], slack_api: Any, clock: FixedClock
) -> None:
    _, slack = served
    clock.set(DAYTIME)
    escalation = _disputed(rt, served)
    with rt.writing() as session:
        session.scalars(select(Contact)).one().email_opted_out_at = clock.now()
    modal = _open_reply(slack, slack_api, escalation)
    assert "opted out of email" in json.dumps(modal["blocks"])
    assert "submit" not in modal and all(b["type"] != "input" for b in modal["blocks"])

    slack.submit("esc_reply", f"{escalation.id}|C0ESCALATE", _values("Re: x", "Hello"))
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert "opted out of email" in slack_api.calls("chat.postEphemeral")[-1]["text"]
    with rt.sessions() as session:
        assert (
            session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).all() == []
        )


def test_a_forbidden_phrase_is_refused_in_the_form(
    rt: Runtime, served: tuple[httpx.Client, SlackRequests], slack_api: Any, clock: FixedClock
) -> None:
    _, slack = served
    clock.set(DAYTIME)
    escalation = _disputed(rt, served)
    answer = slack.submit(
        "esc_reply",
        f"{escalation.id}|C0ESCALATE",
        _values("Re: INV-1001", "Pay now or we pass this to a collection agency."),
    )
    assert answer.json()["response_action"] == "errors"
    assert "collection agencies" in answer.json()["errors"]["body"]


def test_mark_disputed_marks_only_the_invoices_picked(
    rt: Runtime, served: tuple[httpx.Client, SlackRequests], slack_api: Any, clock: FixedClock
) -> None:
    _, slack = served
    clock.set(DAYTIME)
    escalation = _disputed(rt, served)
    with rt.writing() as session:
        for invoice in session.scalars(select(Invoice)):
            invoice.disputed = False
    slack.click("esc_dispute", str(escalation.id), channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]
    assert validate_blocks(modal["blocks"]) == []
    picker = next(b for b in modal["blocks"] if b.get("block_id") == "invoices")["element"]
    assert [o["value"] for o in picker["initial_options"]] == ["INV-1001", "INV-1002"]
    none = {"invoices": {"value": {"type": "multi_static_select", "selected_options": []}}}
    assert (
        slack.submit("esc_dispute", modal["private_metadata"], none).json()["response_action"]
        == "errors"
    )

    one: dict[str, dict[str, Any]] = {
        "invoices": {
            "value": {
                "type": "multi_static_select",
                "selected_options": [picker["options"][1]],
            }
        },
        "reason": {"value": {"type": "plain_text_input", "value": "short delivery"}},
    }
    slack.submit("esc_dispute", modal["private_metadata"], one)

    def flags() -> dict[str, bool]:
        with rt.sessions() as session:
            return dict(session.execute(select(Invoice.number, Invoice.disputed)).all())

    wait_for(lambda: flags()["INV-1002"])
    assert flags() == {"INV-1001": False, "INV-1002": True}
    wait_for(lambda: "marked INV-1002 disputed" in _in_thread(slack_api, escalation))


def _queued_reply(
    rt: Runtime, served: tuple[httpx.Client, SlackRequests], slack_api: Any
) -> Reminder:
    _, slack = served
    escalation = _disputed(rt, served)
    modal = _open_reply(slack, slack_api, escalation)
    slack.submit("esc_reply", modal["private_metadata"], _values("Re: INV-1001", "Noted."))
    wait_for(lambda: "replied to ap@ridgeline.example" in _in_thread(slack_api, escalation))
    with rt.sessions() as session:
        reply = session.scalars(select(Reminder).where(Reminder.step_key == THREAD_REPLY)).one()
        session.expunge(reply)
        return reply


def test_a_reply_goes_to_a_paused_never_automated_customer_a_person_wrote_it(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    clock.set(DAYTIME)
    _queued_reply(rt, served, slack_api)
    with rt.writing() as session:
        customer = session.scalars(select(Customer)).one()
        customer.paused_until, customer.never_automate = datetime(2026, 4, 1, tzinfo=UTC), True

    report = flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})

    assert len(report.sent) == 1 and len(smtp.mailbox.messages) == 1


def test_a_crash_between_claim_and_send_never_sends_the_reply_twice(
    rt: Runtime,
    served: tuple[httpx.Client, SlackRequests],
    slack_api: Any,
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    clock.set(DAYTIME)
    reply = _queued_reply(rt, served, slack_api)
    with rt.writing() as session:  # `sending` was committed, then the worker died
        session.execute(update(Reminder).where(Reminder.id == reply.id).values(state="sending"))
    clock.advance(LEASE + timedelta(minutes=1))

    report = flush(rt, {"email": SmtpSender("127.0.0.1", smtp.port, None, None, False)})

    assert report.unknown == [reply.id] and report.sent == []
    assert smtp.mailbox.messages == []
