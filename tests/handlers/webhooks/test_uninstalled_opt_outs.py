"""A workspace that uninstalled arbot keeps its data, and installing again picks it up. A customer
who texts STOP, asks by text or email to stop, marks a reminder as spam or whose address bounces
while it is uninstalled must not be texted or emailed after a reinstall (RULES A7, B2, C2): the
opt-out is recorded in its data, Slack is told nothing (the workspace has no token), and nothing
else of the message is acted on or kept (it is answered 404, as before)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.models import Contact, Escalation, InboundMessage, Reminder
from bot.core.runtime import Runtime
from bot.core.tokens import token
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.workspaces.registry import Workspaces
from integrations.twilio_sms import twilio_signature
from tests.support.fake_http import local_client
from tests.support.serving import serve
from tests.support.slack_requests import SlackRequests
from tests.support.workspace_setup import BETA, beta_rows, import_rows, install

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)
TWILIO_TOKEN = "twilio-beta-token"
MAIL_SECRET = "beta-inbound-secret"
PHONE = "+13125550142"  # Beta's customer's number (tests.support.ledger_files.row)
ORIGINAL_ID = "<arbot.1.0123456789abcdef@brightwater.example>"


class Uninstalled:
    """Beta, with a reminder sent to its customer, then uninstalled; served over HTTP."""

    def __init__(
        self, beta: Runtime, url: str, slack_api: Any, reminder_id: int, http: httpx.Client
    ) -> None:
        self.beta, self.url, self.slack_api, self.reminder_id = beta, url, slack_api, reminder_id
        self.http = http  # one client for the test's requests (tests/support/fake_http.py)
        self.slack_calls = len(slack_api.calls())

    def text(self, body: str) -> httpx.Response:
        sid = "SM" + hashlib.md5(body.encode()).hexdigest()
        form = {"From": PHONE, "To": "+15005550006", "Body": body, "MessageSid": sid}
        signed = f"{self.beta.settings.public_url}/webhooks/twilio/sms"
        return self.http.post(
            f"{self.url}/w/{BETA}/webhooks/twilio/sms",
            content=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, signed, form),
            },
        )

    def mail(self, raw: bytes) -> httpx.Response:
        return self.http.post(
            f"{self.url}/w/{BETA}/webhooks/email",
            content=raw,
            headers={"Content-Type": "message/rfc822", "Authorization": f"Bearer {MAIL_SECRET}"},
        )

    def sendgrid(self, raw: bytes) -> httpx.Response:
        """The message as SendGrid's Inbound Parse posts it (the raw MIME in `email`)."""
        boundary = "sendgrid-boundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'.encode()
            + raw
            + f"\r\n--{boundary}--\r\n".encode()
        )
        auth = base64.b64encode(f"sendgrid:{MAIL_SECRET}".encode()).decode()
        return self.http.post(
            f"{self.url}/w/{BETA}/webhooks/email/sendgrid",
            content=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Authorization": f"Basic {auth}",
            },
        )

    def signed(self, purpose: str) -> str:
        secret = self.beta.settings.secret_key
        assert secret is not None
        return token(secret.get_secret_value(), self.reminder_id, purpose)

    def contact(self) -> Contact:
        with self.beta.sessions() as session:
            contact = session.scalars(select(Contact)).one()
            session.expunge(contact)
            return contact

    def kept(self) -> tuple[int, int]:
        """(inbound messages, escalations) in Beta's data."""
        with self.beta.sessions() as session:
            return (
                session.scalar(select(func.count()).select_from(InboundMessage)) or 0,
                session.scalar(select(func.count()).select_from(Escalation)) or 0,
            )

    def slack_told_nothing(self) -> bool:
        return len(self.slack_api.calls()) == self.slack_calls


@pytest.fixture
def uninstalled(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, tmp_path: Path
) -> Iterator[Uninstalled]:
    main, workspaces = deployment
    install(main, workspaces, slack_api)
    workspaces.set_settings(
        BETA,
        {
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "ARBOT_INBOUND_EMAIL_SECRET": MAIL_SECRET,
            "SENDGRID_INBOUND_USER": "sendgrid",
            "SENDGRID_INBOUND_PASSWORD": MAIL_SECRET,
        },
    )
    beta = workspaces.runtime(BETA)
    import_rows(beta, tmp_path, beta_rows())
    with beta.writing() as session:
        run_plan(session, PlanRules.from_settings(beta.settings), TODAY, beta.clock.now(), False)
        reminder = session.scalars(select(Reminder)).first()
        assert reminder is not None
        reminder.state, reminder.message_id = "sent", ORIGINAL_ID
        reminder_id = reminder.id
    with serve(main, workspaces, main_app=False) as url, local_client() as http:
        theirs = SlackRequests(url, team=BETA)
        try:
            assert theirs.event({"type": "app_uninstalled"}).status_code == 200
        finally:
            theirs.close()
        gone = workspaces.get(BETA)
        assert gone is not None and not gone.active
        yield Uninstalled(beta, url, slack_api, reminder_id, http)


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.mark.parametrize("body", ["STOP", "stop.", "Please stop texting me"])
def test_a_text_asking_to_stop_opts_the_number_out_with_nothing_said_back(
    uninstalled: Uninstalled, body: str
) -> None:
    answer = uninstalled.text(body)

    assert answer.status_code == 200, answer.text
    assert answer.text == EMPTY_TWIML  # the workspace sends nothing in its name any more
    assert uninstalled.contact().sms_opted_out_at is not None
    assert uninstalled.kept() == (1, 0)  # the text, and no escalation
    assert uninstalled.text(body).status_code == 200  # Twilio's retry: still once
    assert uninstalled.kept() == (1, 0)
    assert uninstalled.slack_told_nothing()


@pytest.mark.parametrize("body", ["We will pay on Friday", "START", "HELP"])
def test_any_other_text_is_not_served(uninstalled: Uninstalled, body: str) -> None:
    assert uninstalled.text(body).status_code == 404
    assert uninstalled.kept() == (0, 0)
    assert uninstalled.contact().sms_opted_out_at is None
    assert uninstalled.slack_told_nothing()


def test_an_unsigned_text_changes_nothing(uninstalled: Uninstalled) -> None:
    forged = uninstalled.http.post(
        f"{uninstalled.url}/w/{BETA}/webhooks/twilio/sms",
        content=urlencode({"From": PHONE, "Body": "STOP"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert forged.status_code == 401
    assert uninstalled.contact().sms_opted_out_at is None


def _reply(text: str, to: str = "ar@brightwater.example") -> bytes:
    return (
        "From: Beta AP <ap@betaonly.example>\r\n"
        f"To: {to}\r\n"
        "Subject: Re: Invoice BETA-1 is past due\r\n"
        "Message-ID: <reply-1@betaonly.example>\r\n"
        f"In-Reply-To: {ORIGINAL_ID}\r\n"
        "\r\n"
        f"{text}\r\n"
    ).encode()


def test_an_emailed_opt_out_opts_the_address_out(uninstalled: Uninstalled) -> None:
    answer = uninstalled.mail(_reply("Please stop emailing me."))

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "opt_out"
    contact = uninstalled.contact()
    assert contact.email_opted_out_at is not None and contact.sms_opted_out_at is None
    assert uninstalled.kept() == (1, 0)  # no escalation: nobody is served
    assert uninstalled.mail(_reply("Please stop emailing me.")).json()["status"] == "duplicate"
    assert uninstalled.slack_told_nothing()


def test_an_opt_out_through_a_mail_service_opts_the_address_out(
    uninstalled: Uninstalled,
) -> None:
    dispute = uninstalled.sendgrid(_reply("We dispute BETA-1: the goods never arrived."))
    assert dispute.status_code == 404
    assert uninstalled.kept() == (0, 0)

    answer = uninstalled.sendgrid(_reply("Please stop emailing me."))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "opt_out"
    assert uninstalled.contact().email_opted_out_at is not None
    assert uninstalled.slack_told_nothing()


def test_a_mail_to_the_unsubscribe_address_opts_the_address_out(
    uninstalled: Uninstalled,
) -> None:
    to = f"ar+u.{uninstalled.signed('unsubscribe')}@brightwater.example"
    answer = uninstalled.mail(_reply("unsubscribe", to=to))

    assert answer.status_code == 200, answer.text
    assert uninstalled.contact().email_opted_out_at is not None
    assert uninstalled.slack_told_nothing()


def test_any_other_email_is_not_served(uninstalled: Uninstalled) -> None:
    dispute = _reply("We dispute BETA-1: the goods never arrived.")
    assert uninstalled.mail(dispute).status_code == 404
    assert uninstalled.kept() == (0, 0)
    assert uninstalled.contact().email_opted_out_at is None
    assert uninstalled.slack_told_nothing()


ARF = (
    "From: Feedback Loop <fbl@isp.example>\r\n"
    "To: bounce+{token}@brightwater.example\r\n"
    "Subject: Abuse report\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
    "--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
    "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
    "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
    "Original-Rcpt-To: ap@betaonly.example\r\n"
    "--F\r\nContent-Type: message/rfc822\r\n\r\n"
    f"Message-ID: {ORIGINAL_ID}\r\nTo: ap@betaonly.example\r\n"
    "Subject: Invoice BETA-1 is past due\r\n\r\nPlease pay.\r\n"
    "--F--\r\n"
)


def _dsn(to_token: str, status_block: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\n"
        f"To: bounce+{to_token}@brightwater.example\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"{status_block}"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ORIGINAL_ID}\r\nTo: ap@betaonly.example\r\n"
        "Subject: Invoice BETA-1 is past due\r\n"
        "--B--\r\n"
    ).encode()


HARD = (
    "Final-Recipient: rfc822; ap@betaonly.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
)
DELAYED = "Final-Recipient: rfc822; ap@betaonly.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"


def test_a_spam_complaint_opts_the_address_out_and_tells_slack_nothing(
    uninstalled: Uninstalled,
) -> None:
    answer = uninstalled.mail(ARF.replace("{token}", uninstalled.signed("bounce")).encode())

    assert answer.status_code == 200, answer.text
    contact = uninstalled.contact()
    assert contact.email_opted_out_at is not None
    assert uninstalled.slack_told_nothing()


def test_a_hard_bounce_marks_the_address_and_a_delay_is_not_served(
    uninstalled: Uninstalled,
) -> None:
    delayed = uninstalled.mail(_dsn(uninstalled.signed("bounce"), DELAYED))
    assert delayed.status_code == 404
    assert uninstalled.kept() == (0, 0)

    answer = uninstalled.mail(_dsn(uninstalled.signed("bounce"), HARD))
    assert answer.status_code == 200, answer.text
    assert uninstalled.contact().email_unusable_at is not None
    assert uninstalled.slack_told_nothing()
