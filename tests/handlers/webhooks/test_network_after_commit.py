"""RULES D5: Slack, Stripe and the mailbox are called only after the change is committed, never
while a write transaction is open (it would hold SQLite's one writer, or PostgreSQL's row locks,
for as long as the other service takes to answer).

Each entry point that takes in something from outside is driven through the real app or command
line, with the local fakes reporting every call to a WriteWatch (tests/support/write_watch.py):
the email webhook, the Twilio webhook, the Stripe webhook and `arbot poll-inbox`. Each test also
checks the calls it expects were made, so a story that called nobody cannot pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Invoice, PaymentLink, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings
from bot.core.tokens import token
from bot.ledger.upsert import apply_batch
from bot.planning import posting as plan_posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from integrations.twilio_sms import twilio_signature
from tests.support import TLS
from tests.support import stripe_requests as sr
from tests.support.fake_http import local_client
from tests.support.fake_stripe import FakeStripe
from tests.support.ledger_files import row, write
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE
from tests.support.write_watch import WriteWatch

TODAY = date(2026, 3, 16)
MAIL_SECRET = "inbound-secret-1"
KEY = "k" * 32
TWILIO_TOKEN = "twilio-test-token"
PUBLIC = "https://arbot.example.com"
SENT_ID = "<arbot.1.0123456789abcdef@brightwater.example>"  # the reminder's Message-ID


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def watched_settings(database_url: str, slack_api: Any, stripe_api: FakeStripe) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        escalation_channel="C0ESCALATE",
        inbound_email_secret=MAIL_SECRET,
        secret_key=KEY,
        twilio_auth_token=TWILIO_TOKEN,
        public_url=PUBLIC,
        stripe_webhook_secret=sr.WEBHOOK_SECRET,
        stripe_api_key=SecretStr("sk_test_arbot"),
        stripe_api_base=stripe_api.url,
    )


@pytest.fixture
def planned(
    watched_settings: Settings, clock: FixedClock, tmp_path: Path, slack_api: Any
) -> Iterator[Runtime]:
    """Ridgeline owes INV-1 and INV-2; today's reminder (as if sent) is on a plan card in Slack,
    and a live Stripe link covers INV-1."""
    runtime = start(watched_settings, clock=clock)
    rows = [
        row(invoice_number="INV-1", due_date="2026-03-09"),
        row(invoice_number="INV-2", amount="300.00", balance="300.00", due_date="2026-03-09"),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
        run_plan(session, PlanRules.from_settings(watched_settings), TODAY, clock.now(), False)
        reminder = session.scalars(select(Reminder)).one()
        reminder.message_id = SENT_ID
        invoice = session.scalars(select(Invoice).where(Invoice.number == "INV-1")).one()
        session.add(
            PaymentLink(
                key="inv-1",
                customer_id=invoice.customer_id,
                url="https://buy.stripe.test/plink_inv1",
                provider_id="plink_inv1",
                currency="USD",
                amount=Decimal("1200.00"),
                invoice_ids=[invoice.id],
                created_at=clock.now(),
            )
        )
    plan_posting.post_plan(
        runtime, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FINANCE", TODAY
    )
    yield runtime
    runtime.close()


@pytest.fixture
def app(planned: Runtime) -> Iterator[httpx.Client]:
    with serve(planned) as url, local_client(base_url=url, timeout=PATIENCE) as client:
        yield client


@pytest.fixture
def watch(slack_api: Any, stripe_api: FakeStripe) -> Iterator[WriteWatch]:
    with WriteWatch() as watching:
        slack_api.on_call = watching.called
        stripe_api.on_call = watching.called
        yield watching
        slack_api.on_call = stripe_api.on_call = None


def _mail(text: str, message_id: str, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "Maria Garcia <ap@ridgeline.example>")
    mail["To"] = headers.pop("To", "ar@brightwater.example")
    mail["Subject"] = "Re: Invoice INV-1 is past due"
    mail["Message-ID"] = message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail.as_bytes()


def _post_mail(app: httpx.Client, raw: bytes) -> dict[str, Any]:
    answer = app.post(
        "/webhooks/email",
        content=raw,
        headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {MAIL_SECRET}"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _text(app: httpx.Client, body: str, sender: str = "+13125550142") -> httpx.Response:
    form = {
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "MessageSid": "SM" + hashlib.md5(body.encode()).hexdigest(),
    }
    return app.post(
        "/webhooks/twilio/sms",
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(
                TWILIO_TOKEN, f"{PUBLIC}/webhooks/twilio/sms", form
            ),
        },
    )


def _pay(app: httpx.Client, planned: Runtime, number: str, minor: int, pi: str) -> str:
    with planned.sessions() as session:
        invoice_id = session.scalars(select(Invoice.id).where(Invoice.number == number)).one()
    body = sr.event("payment_intent.succeeded", sr.payment_intent(minor, [invoice_id], pi))
    answer = app.post(
        "/webhooks/stripe",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sr.signature(body)},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def test_the_email_webhook_tells_slack_only_after_its_commit(
    app: httpx.Client, watch: WriteWatch
) -> None:
    to = f"ar+r.{token(KEY, 1, 'reply')}@brightwater.example"
    dispute = "We are not paying INV-1: the delivery arrived damaged."
    assert _post_mail(app, _mail(dispute, "<r1@ridgeline.example>", To=to))["status"] == "reply"
    again = _mail("Any news?", "<r2@ridgeline.example>", In_Reply_To=SENT_ID)
    assert _post_mail(app, again)["status"] == "reply"  # the open thread hears of it
    stranger = _mail("Who is this?", "<r3@else.example>", From="who@else.example")
    assert _post_mail(app, stranger)["status"] == "unmatched"

    assert {"Slack chat.update", "Slack chat.postMessage"} <= set(watch.calls)
    assert watch.breaches == []


def test_the_email_webhook_hands_a_message_it_cannot_read_to_slack_only_after_keeping_it(
    app: httpx.Client, watch: WriteWatch
) -> None:
    head = b"From: who@else.example\r\nSubject: Statement\r\nMIME-Version: 1.0\r\n"
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(5000)
    )
    assert _post_mail(app, head + nested + b"\r\nsee attached")["status"] == "unreadable"

    assert "Slack chat.postMessage" in watch.calls
    assert watch.breaches == []


def test_the_twilio_webhook_tells_slack_only_after_its_commit(
    app: httpx.Client, watch: WriteWatch
) -> None:
    assert _text(app, "Can you send me a copy of invoice INV-1? I can't find it").status_code == 200
    assert _text(app, "Still waiting for that copy").status_code == 200
    assert _text(app, "who is this?", sender="+13125550199").status_code == 200

    assert {"Slack chat.update", "Slack chat.postMessage"} <= set(watch.calls)
    assert watch.breaches == []


def test_the_stripe_webhook_calls_stripe_and_slack_only_after_its_commit(
    app: httpx.Client, planned: Runtime, watch: WriteWatch
) -> None:
    assert _pay(app, planned, "INV-1", 120000, "pi_paid") == "applied"  # link retired, card redrawn
    assert _pay(app, planned, "INV-1", 120000, "pi_twice") == "applied"  # an escalation is posted
    assert _pay(app, planned, "INV-2", 10000, "pi_part") == "applied"  # its thread hears of it

    assert "Stripe POST /v1/payment_links/plink_inv1" in watch.calls
    assert {"Slack chat.update", "Slack chat.postMessage"} <= set(watch.calls)
    assert watch.breaches == []


def test_poll_inbox_tells_slack_only_after_each_commit(
    planned: Runtime,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    slack_api: Any,
    watch: WriteWatch,
) -> None:
    from tests.support.fake_imap import PASSWORD, USER, FakeImap

    with FakeImap() as imap:
        imap.mailbox.on_call = watch.called
        imap.mailbox.add(
            _mail("We will pay on the 30th.", "<p1@ridgeline.example>", In_Reply_To=SENT_ID)
        )
        imap.mailbox.add(_mail("Who is this?", "<p2@else.example>", From="who@else.example"))
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
    assert "1 reply" in result.stdout and "1 unmatched" in result.stdout
    assert watch.breaches == []
    assert "IMAP UID" in watch.calls
    assert {"Slack chat.update", "Slack chat.postMessage"} <= set(watch.calls)


def test_the_sweep_calls_slack_and_stripe_only_after_each_commit(
    planned: Runtime, clock: FixedClock, slack_api: Any, stripe_api: FakeStripe, watch: WriteWatch
) -> None:
    """An escalation with no thread, a bank payment to place, a payment link whose invoice was
    paid, and an escalation nobody claimed for days: the sweep posts, retires and raises them
    all, with no write open while Slack or Stripe answers."""
    from bot.core.models import Customer, Escalation, Payment, PaymentReview
    from bot.escalations import service
    from bot.escalations.sweeps import sweep
    from integrations.stripe_links import StripeLinks

    now = clock.now()
    with planned.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", now, owner="U0APPROVER")
        session.scalars(select(Invoice).where(Invoice.number == "INV-1")).one().status = "paid"
        payment = Payment(
            source="bank",
            external_id="bank:1",
            customer_id=None,
            amount=Decimal("500.00"),
            currency="USD",
            received_on=TODAY,
            payer="Someone",
            reference="March",
            created_at=now,
        )
        session.add(payment)
        session.flush()
        session.add(
            PaymentReview(payment_id=payment.id, candidates=[], state="open", created_at=now)
        )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    links = StripeLinks("sk_test_arbot", stripe_api.url)

    first = sweep(planned, chat, links=links)
    assert first.posted and first.reviews_posted
    with planned.writing() as session:  # nobody claimed the thread for a week
        escalation = session.scalars(select(Escalation)).one()
        escalation.opened_at = now - timedelta(days=7)
    second = sweep(planned, chat, links=links)

    assert second.raised == [escalation.id]
    assert "Stripe POST /v1/payment_links/plink_inv1" in watch.calls
    assert watch.calls.count("Slack chat.postMessage") >= 3  # escalation, review, raised again
    assert watch.breaches == []
