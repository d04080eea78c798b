"""One reminder's whole life, through the interfaces a business meets: a ledger CSV imported with
`arbot import-csv`, the day planned and posted to Slack with `arbot plan`, a signed Approve click
on its card, `arbot send` over real SMTP, the customer's reply to that email disputing the
invoice (a signed `POST /webhooks/email`), and the escalation a person takes over, posted to the
escalation channel with the account's history in its thread."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Escalation, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.settings import Settings, load_settings
from tests.handlers.posted_plan import approve_value_in
from tests.support.fake_http import local_client
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # a whole story through the real app served over HTTP

SECRET_KEY = "k" * 32
INBOUND_SECRET = "inbound-secret-1"


@pytest.fixture
def slack_settings(database_url: str, slack_api: Any) -> Settings:
    """The served app's settings: those of the command line below, so both see one business."""
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
        secret_key=SECRET_KEY,
        inbound_email_secret=INBOUND_SECRET,
        from_email="ar@brightwater.example",
        business_name="Brightwater Supply Co.",
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def arbot(cli: Any, slack_api: Any, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`arbot ...` with the same business's settings, Slack and SMTP as the served app."""
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
        "ARBOT_ESCALATION_CHANNEL": "C0ESCALATE",
        "ARBOT_APPROVERS": "U0APPROVER",
        "ARBOT_SECRET_KEY": SECRET_KEY,
        "ARBOT_FROM_EMAIL": "ar@brightwater.example",
        "ARBOT_BUSINESS_NAME": "Brightwater Supply Co.",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    return cli


def test_a_ledger_row_becomes_a_sent_reminder_whose_disputed_reply_reaches_a_person(
    arbot: Any,
    served: Any,
    slack_runtime: Runtime,
    slack_api: Any,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = write(
        tmp_path / "ledger.csv",
        [row(invoice_number="INV-1001", due_date="2026-03-09", email="ap@ridgeline.example")],
    )
    assert arbot("import-csv", str(ledger)).code == 0

    planned = arbot("plan")
    assert planned.code == 0, planned.stderr
    assert "Posted to Slack channel C0FINANCE" in planned.stdout
    with slack_runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    assert reminder.state == "planned" and reminder.slack_ts

    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    shown = approve_value_in(card, reminder.id)  # the card's Approve, as Slack shows it
    answer = served.click("approve", shown, message_ts=reminder.slack_ts)
    assert answer.status_code == 200
    wait_for(lambda: _state(slack_runtime, reminder.id) == "approved")

    too_soon = arbot("send")  # within the approval's undo window (ARBOT_UNDO_SECONDS)
    assert too_soon.code == 0 and _state(slack_runtime, reminder.id) == "approved"
    undo_over = slack_runtime.clock.now() + timedelta(seconds=slack_runtime.settings.undo_seconds)
    monkeypatch.setenv("ARBOT_NOW", undo_over.isoformat())
    sent = arbot("send")
    assert sent.code == 0, sent.stderr
    assert "Sent 1," in sent.stdout
    assert _state(slack_runtime, reminder.id) == "sent"
    [delivered] = smtp.mailbox.messages
    assert "<ap@ridgeline.example>" in delivered["To"]
    assert "INV-1001" in delivered.as_string()

    reply = EmailMessage()
    reply["From"] = "Maria Garcia <ap@ridgeline.example>"
    reply["To"] = delivered["Reply-To"]
    reply["Subject"] = f"Re: {delivered['Subject']}"
    reply["Message-ID"] = "<reply-1@ridgeline.example>"
    reply["In-Reply-To"] = delivered["Message-ID"]
    reply.set_content("We are not paying INV-1001: half the delivery arrived damaged.")
    app_url = served.url.removesuffix("/slack/events")
    with local_client() as http:
        posted = http.post(
            f"{app_url}/webhooks/email",
            content=reply.as_bytes(),
            headers={
                "Content-Type": "message/rfc822",
                "Authorization": f"Bearer {INBOUND_SECRET}",
            },
        )
    assert posted.status_code == 200, posted.text
    assert posted.json()["status"] == "reply"

    with slack_runtime.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        invoice = session.scalars(select(Invoice)).one()
    assert escalation.reason.startswith("repl") and escalation.state == "open"
    assert escalation.slack_channel and escalation.slack_thread_ts
    assert invoice.disputed
    posts = slack_api.calls("chat.postMessage")
    card = next(p for p in posts if p["channel"] == "C0ESCALATE" and "thread_ts" not in p)
    assert "Ridgeline" in str(card["blocks"]) and "damaged" in str(card["blocks"])
    history = [p for p in posts if p.get("thread_ts") == escalation.slack_thread_ts]
    assert any("INV-1001" in str(p) for p in history)


def _state(runtime: Runtime, reminder_id: int) -> str:
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        return reminder.state
