"""An email reply through the real ASGI app: POST /webhooks/email (a raw RFC 5322 message behind a
shared secret) or `arbot poll-inbox` (an IMAP mailbox), what is paused, and the escalation thread
the fake Slack Web API receives."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, InboundMessage, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from integrations.slack_chat import SlackChat, web_client
from tests.support import MAIL_SAMPLES, TLS
from tests.support.fake_slack import validate_blocks
from tests.support.inbound_requests import (
    DISPUTE,
    KEY,
    SECRET,
    TODAY,
    counts,
    email_reply,
    post_mail,
    text_in,
    the_reminder,
)

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def test_a_dispute_reply_pauses_flags_and_opens_a_thread_with_the_history(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    reminder = the_reminder(rt)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example"

    answer = post_mail(app, email_reply(DISPUTE, To=to))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "reply", "label": "dispute"}
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        assert stored.matched_by == "reply_token" and stored.reminder_id == reminder.id
        assert "wrote:" not in stored.text and "damaged" in stored.text  # quoted history gone
        assert "Please pay" in stored.raw  # the raw message is kept
        after = session.get(Reminder, reminder.id)
        assert after is not None and (after.state, after.cancel_reason) == ("cancelled", "replied")
        disputed = dict(session.execute(select(Invoice.number, Invoice.disputed)).all())
        assert disputed == {"INV-1001": True, "INV-1002": False}  # the one the reply names
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.slack_channel == "C0ESCALATE" and escalation.slack_thread_ts
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert validate_blocks(parent["blocks"]) == []
    text = json.dumps(parent["blocks"])
    assert "<@U07DANA01>" in text  # the account owner
    assert "second delivery arrived damaged" in text  # what they wrote
    assert "check the delivery record for INV-1001" in text  # the suggested next step
    for action in ("esc_claim", "esc_promise", "esc_dispute", "esc_resume", "esc_resolve"):
        assert f'"action_id": "{action}"' in text
    thread = [
        c
        for c in slack_api.calls("chat.postMessage")
        if c.get("thread_ts") == escalation.slack_thread_ts
    ]
    history = json.dumps([c["blocks"] for c in thread])
    assert all(validate_blocks(c["blocks"]) == [] for c in thread)
    assert "INV-1001" in history and "days overdue" in history
    assert "reply by email (dispute)" in history and "disputed INV-1001" in history
    # the card in the finance channel shows the reminder stopped
    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    assert "replied" in json.dumps(card["blocks"])


def test_a_reply_found_by_in_reply_to_with_a_promise_pauses_until_the_date(
    rt: Runtime, app: httpx.Client
) -> None:
    raw = email_reply(
        "We will pay this by the 30th. Sorry for the delay.",
        In_Reply_To="<arbot.1.0123456789abcdef@brightwater.example>",
    )

    assert post_mail(app, raw).json()["label"] == "promise_to_pay"

    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
        assert stored.matched_by == "in_reply_to"
        assert set(session.scalars(select(Invoice.promise_date))) == {date(2026, 3, 30)}
        from bot.core.models import Customer

        paused = session.scalars(select(Customer.paused_until)).one()
    assert paused is not None and paused.date() == date(2026, 4, 2)  # the 30th plus 2 days' grace


def test_the_same_message_twice_is_handled_once(rt: Runtime, app: httpx.Client) -> None:
    raw = email_reply(DISPUTE, In_Reply_To="<arbot.1.0123456789abcdef@brightwater.example>")
    assert post_mail(app, raw).json()["status"] == "reply"
    before = counts(rt)
    assert post_mail(app, raw).json()["status"] == "duplicate"
    assert counts(rt) == before


def test_a_mail_to_the_unsubscribe_address_opts_the_address_out(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = the_reminder(rt)
    to = f"ar+u.{token(KEY, reminder.id, 'unsubscribe')}@brightwater.example"
    assert (
        post_mail(app, email_reply("unsubscribe", To=to, Subject="unsubscribe")).json()["status"]
        == "opt_out"
    )
    with rt.sessions() as session:
        assert session.scalars(select(Contact.email_opted_out_at)).one() is not None


def test_basic_auth_with_the_secret_as_password_is_accepted(rt: Runtime, app: httpx.Client) -> None:
    import base64

    raw = email_reply("Out of office", Auto_Submitted="auto-replied")
    credentials = base64.b64encode(f"api:{SECRET}".encode()).decode()
    answer = app.post(
        "/webhooks/email",
        content=raw,
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "message/rfc822"},
    )
    assert answer.status_code == 200


def test_an_out_of_office_is_logged_and_pauses_nothing(rt: Runtime, app: httpx.Client) -> None:
    raw = email_reply(
        "I am out of the office until March 20 with limited access to email.",
        Subject="Automatic reply: Invoice INV-1001 is past due",
        Auto_Submitted="auto-replied",
    )

    assert post_mail(app, raw).json()["status"] == "automatic"
    inbound, escalations, states = counts(rt)
    assert (inbound, escalations, states) == (1, 0, ("planned",))


@pytest.mark.parametrize(("before", "stop"), [("sent", None), ("sending", "paid")])
def test_a_bounce_marks_the_address_fails_the_reminder_and_escalates(
    rt: Runtime, app: httpx.Client, before: str, stop: str | None
) -> None:
    """Also one still `sending` (its lane stores results a few at a time): a stop asked for after
    its claim no longer describes it, the bounce does."""
    reminder = the_reminder(rt)
    with rt.writing() as session:
        stored = session.get(Reminder, reminder.id)
        assert stored is not None
        stored.state, stored.cancel_reason = before, stop
    bounce_to = f"bounce+{token(KEY, reminder.id, 'bounce')}@brightwater.example"
    raw = (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: {bounce_to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; ap@ridgeline.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Message-ID: <arbot.1.0123456789abcdef@brightwater.example>\r\n"
        "Subject: Invoice INV-1001 is past due\r\n"
        "--B--\r\n"
    ).encode()

    assert post_mail(app, raw).json()["status"] == "bounce"

    with rt.sessions() as session:
        after = session.get(Reminder, reminder.id)
        contact = session.scalars(select(Contact)).one()
        escalation = session.scalars(select(Escalation)).one()
    assert after is not None and after.state == "failed" and "5.1.1" in (after.error or "")
    assert after.cancel_reason is None
    assert contact.email_unusable_at is not None
    assert escalation.reason == "send_failed"


def test_a_message_matching_nothing_goes_to_the_finance_channel(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    raw = email_reply("Who is this? I never ordered anything.", From="stranger@elsewhere.example")

    assert post_mail(app, raw).json()["status"] == "unmatched"
    posted = slack_api.calls("chat.postMessage")[-1]
    assert posted["channel"] == "C0FINANCE"
    assert "matched no customer" in posted["text"] and "/ar assign" in posted["text"]
    assert counts(rt)[1:] == (0, ("planned",))


def _unmatched_bounce() -> bytes:
    """A bounce whose token is good but names no reminder arbot has."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: bounce+{token(KEY, 999, 'bounce')}@brightwater.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; someone@else.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n"
        "--B--\r\n"
    ).encode()


@pytest.mark.parametrize("kind", ["email", "text", "bounce"])
def test_a_message_slack_did_not_get_is_posted_by_the_next_sweep_once(
    rt: Runtime, app: httpx.Client, slack_api: Any, kind: str
) -> None:
    from bot.escalations.sweeps import sweep

    slack_api.fail_next("chat.postMessage", "service_unavailable")
    if kind == "email":
        raw = email_reply(
            "Who is this? I never ordered anything.", From="stranger@elsewhere.example"
        )
        assert post_mail(app, raw).json()["status"] == "unmatched"
    elif kind == "bounce":
        assert post_mail(app, _unmatched_bounce()).json()["status"] == "unmatched"
    else:
        assert text_in(app, "who is this?", sender="+13125550199").status_code == 200
    assert slack_api.calls("chat.postMessage")  # it was tried, and refused
    assert not any("matched no customer" in c.get("text", "") for c in _posts(slack_api))

    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    assert sweep(rt, chat).unmatched_posted == [1]
    assert sweep(rt, chat).unmatched_posted == []  # told once
    told = [c for c in _posts(slack_api) if "matched no customer" in c.get("text", "")]
    assert [c["channel"] for c in told] == ["C0FINANCE"]


def test_a_message_placed_by_a_person_is_not_posted_again(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    from bot.escalations.sweeps import sweep
    from bot.replies.assign import assign
    from bot.replies.match import ReplyRules
    from bot.replies.triage import RuleClassifier

    chat = _stranger_writes_while_slack_is_down(app, slack_api, "Paying next week.")
    with rt.writing() as session:
        rules = ReplyRules.from_settings(rt.settings)
        assign(session, 1, "C-1", "U0APPROVER", rt.clock.now(), TODAY, rules, RuleClassifier())
    assert sweep(rt, chat).unmatched_posted == []


def test_a_message_another_process_is_posting_is_left_to_it_until_its_claim_lapses(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    from datetime import timedelta

    from bot.core.models import InboundMessage
    from bot.escalations.sweeps import sweep

    chat = _stranger_writes_while_slack_is_down(app, slack_api, "Who is this?")
    with rt.writing() as session:  # another replica's webhook is posting it right now
        session.get(InboundMessage, 1).slack_claimed_at = rt.clock.now()  # type: ignore[union-attr]
    assert sweep(rt, chat).unmatched_posted == []
    with rt.writing() as session:  # ... and died doing it, eleven minutes ago
        message = session.get(InboundMessage, 1)
        assert message is not None
        message.slack_claimed_at = rt.clock.now() - timedelta(minutes=11)
    assert sweep(rt, chat).unmatched_posted == [1]


def _stranger_writes_while_slack_is_down(app: httpx.Client, slack_api: Any, text: str) -> SlackChat:
    """A mail nobody can place arrives while Slack refuses the post; the Slack the sweep uses."""
    slack_api.fail_next("chat.postMessage", "service_unavailable")
    raw = email_reply(text, From="stranger@elsewhere.example")
    assert post_mail(app, raw).json()["status"] == "unmatched"
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _posts(slack_api: Any) -> list[dict[str, Any]]:
    return [r["params"] for r in slack_api.records("chat.postMessage") if r["response"]["ok"]]


@pytest.mark.parametrize("secret", [None, "wrong", ""], ids=["missing", "wrong", "empty"])
def test_without_the_secret_the_email_webhook_answers_401_and_changes_nothing(
    rt: Runtime, app: httpx.Client, secret: str | None
) -> None:
    before = counts(rt)
    assert post_mail(app, email_reply(DISPUTE), secret).status_code == 401
    assert counts(rt) == before


def test_an_html_only_reply_through_the_webhook_is_read_as_text(
    rt: Runtime, app: httpx.Client
) -> None:
    raw = (MAIL_SAMPLES / "html_only_reply.eml").read_bytes()
    raw = raw.replace(
        b"<arbot.7.abcdef0123456789@example.com>", b"<arbot.1.0123456789abcdef@brightwater.example>"
    )

    assert post_mail(app, raw).json()["status"] == "reply"
    with rt.sessions() as session:
        stored = session.scalars(select(InboundMessage)).one()
    assert stored.matched_by == "in_reply_to"
    assert "payment run is every Friday" in stored.text
    assert "<p>" not in stored.text and "console.log" not in stored.text


def test_poll_inbox_reads_the_mailbox_once(
    rt: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch, slack_api: Any
) -> None:
    from tests.support.fake_imap import PASSWORD, USER, FakeImap

    samples = MAIL_SAMPLES
    with rt.writing() as session:
        session.scalars(
            select(Reminder)
        ).one().message_id = "<arbot.7.abcdef0123456789@example.com>"
    with FakeImap() as imap:
        imap.mailbox.add((samples / "html_only_reply.eml").read_bytes())
        imap.mailbox.add((samples / "out_of_office_auto_submitted.eml").read_bytes())
        for name, value in {
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(imap.port),
            "IMAP_USER": USER,
            "IMAP_PASSWORD": PASSWORD,
            "IMAP_CA_FILE": str(TLS / "cert.pem"),
            "ARBOT_SECRET_KEY": KEY,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack_api.url,
            "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
            "ARBOT_ESCALATION_CHANNEL": "C0ESCALATE",
        }.items():
            monkeypatch.setenv(name, value)

        first = cli("poll-inbox")
        second = cli("poll-inbox")

        assert first.code == 0, first.stderr
        assert (
            "2 fetched" in first.stdout
            and "1 automatic" in first.stdout
            and "1 reply" in first.stdout
        )
        assert "0 fetched" in second.stdout
        assert imap.mailbox.unseen_uids() == []
    with rt.sessions() as session:
        assert session.scalars(select(Reminder.cancel_reason)).one() == "replied"
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.slack_channel == "C0ESCALATE" and escalation.slack_thread_ts


def test_a_customers_text_cannot_ping_the_channel_or_disguise_a_link(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    raw = email_reply(
        "<!channel> urgent <https://evil.example|Pay here>", From="x@elsewhere.example"
    )

    assert post_mail(app, raw).json()["status"] == "unmatched"
    posted = slack_api.calls("chat.postMessage")[-1]["text"]
    assert "<!channel>" not in posted and "&lt;!channel&gt;" in posted
    assert "<https://evil.example|Pay here>" not in posted


def test_poll_inbox_ends_with_a_sweep_so_a_cron_job_alone_posts_what_slack_missed(
    rt: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch, slack_api: Any
) -> None:
    """Run from cron without `arbot serve`, poll-inbox is the only thing that sweeps: an
    escalation Slack never got is posted even when the mailbox is empty."""
    from bot.core.models import Customer, Escalation
    from bot.escalations import service
    from tests.support.fake_imap import PASSWORD, USER, FakeImap

    with rt.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    with FakeImap() as imap:
        for name, value in {
            "IMAP_HOST": "127.0.0.1",
            "IMAP_PORT": str(imap.port),
            "IMAP_USER": USER,
            "IMAP_PASSWORD": PASSWORD,
            "IMAP_CA_FILE": str(TLS / "cert.pem"),
            "ARBOT_SECRET_KEY": KEY,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack_api.url,
            "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
            "ARBOT_ESCALATION_CHANNEL": "C0ESCALATE",
        }.items():
            monkeypatch.setenv(name, value)
        result = cli("poll-inbox")

    assert result.code == 0, result.stderr
    assert "0 fetched" in result.stdout
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.slack_channel == "C0ESCALATE" and escalation.slack_thread_ts
