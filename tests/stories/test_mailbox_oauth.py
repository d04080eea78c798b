"""The mailbox signed in with OAuth 2.0 (Gmail, Microsoft 365): `arbot connect gmail`, reminders
sent over SMTP with XOAUTH2 and replies read over IMAP with it, the access token refreshed before
it expires, a rotated refresh token kept sealed, and a revoked grant that stops email without
losing a reminder, tells the finance channel once and /healthz, and resumes after a re-connect with
each reminder sent exactly once. Against a real SMTP server (aiosmtpd, STARTTLS), the local IMAP
server and a local token endpoint."""

from __future__ import annotations

import base64
import io
import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import Escalation, MailboxGrant, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from integrations.base.ledger import Tokens
from integrations.errors import ReconnectNeeded
from integrations.imap_in import ImapError, poll
from integrations.mail_oauth import (
    MailboxAccess,
    gmail_provider,
    microsoft365_provider,
    xoauth2_base64,
)
from integrations.mailbox_grants import MailboxGrants
from integrations.oauth import authorize_url, exchange_code
from scheduler.health import health
from tests.bot.reminders.test_outbox import approved, states
from tests.conftest import NOW
from tests.integrations.test_slack_blocks import check_limits
from tests.support import TLS
from tests.support.fake_imap import FakeImap
from tests.support.fake_mail_oauth import CLIENT_ID, CLIENT_SECRET, CODE, FakeMailOAuth
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # a whole story through the real app served over HTTP

ADDRESS = "ar@brightwater.example"
KEY = "test-secret-key"
REDIRECT = "http://localhost:8765/callback"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(tls=True).start()
    yield server
    server.stop()


@pytest.fixture
def google(smtp: SmtpServer) -> Iterator[FakeMailOAuth]:
    fake = FakeMailOAuth(ADDRESS, accept=smtp.mailbox.bearer_tokens.__setitem__).start()
    yield fake
    fake.stop()


@pytest.fixture
def mail_env(
    cli: Any,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    for name, value in {
        "ARBOT_MAILBOX": "gmail",
        "SMTP_HOST": "127.0.0.1",  # instead of the preset's smtp.gmail.com
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "true",
        "SMTP_CA_FILE": str(TLS / "cert.pem"),
        "SMTP_USER": ADDRESS,
        "ARBOT_FROM_EMAIL": ADDRESS,
        "ARBOT_SECRET_KEY": KEY,
        "ARBOT_BUSINESS_NAME": "Brightwater Supply Co.",
        "GMAIL_CLIENT_ID": CLIENT_ID,
        "GMAIL_CLIENT_SECRET": CLIENT_SECRET,
        "GMAIL_AUTHORIZE_URL": google.authorize_url,
        "GMAIL_TOKEN_URL": google.token_url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    return cli


@pytest.fixture
def keyed(database_url: str, clock: FixedClock) -> Iterator[Runtime]:
    """A runtime on the test database with ARBOT_SECRET_KEY set (the grants are sealed with it)."""
    rt = start(load_settings(env_file=None, database_url=database_url, secret_key=KEY), clock=clock)
    yield rt
    rt.close()


def connect(cli: Any, monkeypatch: pytest.MonkeyPatch, name: str = "gmail") -> Any:
    """Answer the prompt with the address the browser lands on (state read from the link)."""

    class Stdin(io.StringIO):
        def readline(self, *args: Any) -> str:  # type: ignore[override]
            printed = sys.stdout.getvalue() if hasattr(sys.stdout, "getvalue") else ""
            state = re.findall(r"state=([\w-]+)", printed)
            return f"{REDIRECT}?code={CODE}&state={state[-1] if state else ''}&scope=x\n"

    monkeypatch.setattr(sys, "stdin", Stdin())
    return cli("connect", name)


def finance_posts(slack_api: Any) -> list[dict[str, Any]]:
    return [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]


# --- The SASL XOAUTH2 response and the providers' links ------------------------------------


def test_the_xoauth2_response_is_googles_documented_example() -> None:
    token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    assert xoauth2_base64("someuser@example.com", token) == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_the_gmail_link_asks_for_mail_offline_and_consent_and_microsofts_for_smtp_imap_offline() -> (
    None
):
    gmail = parse_qs(urlsplit(authorize_url(gmail_provider("id", "s"), "st", REDIRECT)).query)
    assert gmail["scope"] == ["https://mail.google.com/ openid email"]
    assert gmail["access_type"] == ["offline"] and gmail["prompt"] == ["consent"]
    link = authorize_url(microsoft365_provider("id", "s", tenant="contoso.com"), "st", REDIRECT)
    assert link.startswith("https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize?")
    scopes = parse_qs(urlsplit(link).query)["scope"][0].split()
    assert scopes == [
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
        "openid",
        "email",
    ]


# --- Refresh before expiry, rotation kept sealed ---------------------------------------------


def test_the_token_is_refreshed_shortly_before_it_expires_and_a_rotated_one_is_kept_sealed(
    keyed: Runtime, clock: FixedClock, smtp: SmtpServer
) -> None:
    fake = FakeMailOAuth(ADDRESS, accept=smtp.mailbox.bearer_tokens.__setitem__, rotate=True)
    fake.start()
    try:
        provider = microsoft365_provider(
            CLIENT_ID,
            CLIENT_SECRET,
            authorize_endpoint=fake.authorize_url,
            token_endpoint=fake.token_url,
        )
        grants = MailboxGrants(keyed)
        grants.connect("microsoft365", exchange_code(provider, CODE, REDIRECT, clock.now()))
        access = MailboxAccess(provider, ADDRESS, grants, clock.now)

        clock.advance(timedelta(minutes=54))  # six minutes left: still good
        assert access.access_token() == "mail-access-1"
        clock.advance(timedelta(minutes=2))  # four minutes left: refreshed first
        assert access.access_token() == "mail-access-2"
        assert access.access_token() == "mail-access-2"  # and kept
        refresh = fake.forms[-1]
        assert refresh["grant_type"] == "refresh_token"
        assert refresh["refresh_token"] == "mail-refresh-1"
        assert refresh["scope"].split() == list(provider.scopes)  # Microsoft asks for them again
        assert refresh["client_secret"] == CLIENT_SECRET
        assert len(fake.forms) == 2

        stored = grants.load("microsoft365")
        assert stored is not None and stored.refresh_token == "mail-refresh-2"  # rotated in
        with keyed.sessions() as session:
            sealed = session.scalars(select(MailboxGrant.ciphertext)).one()
        assert "mail-refresh" not in sealed and "mail-access" not in sealed
    finally:
        fake.stop()


# --- Sending, revoked, re-connected ----------------------------------------------------------


def test_connect_gmail_then_reminders_go_by_xoauth2(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    connected = connect(mail_env, monkeypatch)
    assert connected.code == 0, connected.stderr
    assert f"Connected the Gmail mailbox {ADDRESS}" in connected.stdout
    assert "access_type=offline" in connected.stdout and "prompt=consent" in connected.stdout
    approved(mail_env, runtime, tmp_path)
    sent = mail_env("send")
    assert sent.code == 0, sent.stderr
    assert "Sent 1" in sent.stdout
    assert smtp.mailbox.xoauth2_logins == ["mail-access-1"]
    assert len(smtp.mailbox.messages) == 1
    assert states(runtime) == {1: "sent"}


def test_a_revoked_grant_holds_email_tells_slack_and_healthz_once_and_resumes_after_reconnect(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert connect(mail_env, monkeypatch).code == 0
    approved(mail_env, runtime, tmp_path, customers=2)
    google.revoke()  # the person removed arbot's access in their Google account
    smtp.mailbox.bearer_tokens.clear()  # the access token already handed out dies with it
    plan_posts = len(finance_posts(slack_api))

    stopped = mail_env("send")
    assert stopped.code == 1
    assert "arbot connect gmail" in stopped.stderr and "Nothing was lost" in stopped.stderr
    assert states(runtime) == {1: "approved", 2: "approved"}  # waiting, not failed
    assert smtp.mailbox.messages == []
    told = finance_posts(slack_api)[plan_posts:]
    assert len(told) == 1
    assert "arbot connect gmail" in told[0]["text"] and "Gmail refused" in told[0]["text"]
    check_limits(told[0]["blocks"])

    token_requests = len(google.forms)
    again = mail_env("send")  # the next run (or the scheduler's next tick)
    assert again.code == 1 and "arbot connect gmail" in again.stderr
    assert len(finance_posts(slack_api)) == plan_posts + 1  # told once
    assert len(google.forms) == token_requests  # and the dead grant is not tried again
    assert states(runtime) == {1: "approved", 2: "approved"}

    _, doc = health(runtime, None)
    assert doc["status"] == "degraded"
    refused = doc["mailbox"]["refused"]["gmail"]
    assert "arbot connect gmail" in refused["reason"] and refused["at"] == NOW.isoformat()

    assert connect(mail_env, monkeypatch).code == 0
    resumed = mail_env("send")
    assert resumed.code == 0, resumed.stderr
    assert "Sent 2" in resumed.stdout
    assert mail_env("send").code == 0  # nothing more to send
    assert states(runtime) == {1: "sent", 2: "sent"}
    ids = smtp.mailbox.message_ids()
    assert len(ids) == 2 and len(set(ids)) == 2  # each reminder exactly once
    _, doc = health(runtime, None)
    assert doc["mailbox"] == {"connected": ["gmail"], "refused": {}}
    assert doc["status"] == "ok"


def test_an_access_token_revoked_before_it_expired_is_refreshed_and_the_send_goes_on(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert connect(mail_env, monkeypatch).code == 0
    approved(mail_env, runtime, tmp_path)
    smtp.mailbox.bearer_tokens.clear()  # the server no longer takes the token it was given
    sent = mail_env("send")
    assert sent.code == 0, sent.stderr
    assert smtp.mailbox.xoauth2_logins == ["mail-access-1", "mail-access-2"]
    assert states(runtime) == {1: "sent"}


# --- Reading replies over IMAP ---------------------------------------------------------------


def test_replies_are_read_over_imap_with_xoauth2_and_a_revoked_grant_names_the_fix(
    keyed: Runtime, clock: FixedClock, smtp: SmtpServer
) -> None:
    with FakeImap() as imap:
        fake = FakeMailOAuth(ADDRESS, accept=imap.mailbox.bearer_tokens.__setitem__).start()
        try:
            provider = gmail_provider(CLIENT_ID, CLIENT_SECRET, fake.authorize_url, fake.token_url)
            grants = MailboxGrants(keyed)
            grants.connect("gmail", exchange_code(provider, CODE, REDIRECT, clock.now()))
            access = MailboxAccess(provider, ADDRESS, grants, clock.now)
            imap.mailbox.add(b"From: c@example.com\r\nSubject: Re: invoice\r\n\r\nPaid today.\r\n")
            got: list[bytes] = []

            def handle(raw: bytes) -> bool:
                got.append(raw)
                return True

            context = imap.client_context()
            report = poll("127.0.0.1", imap.port, "", "", "INBOX", handle, context, oauth=access)
            assert report.handled == 1 and b"Paid today." in got[0]
            assert "AUTHENTICATE XOAUTH2" in imap.mailbox.commands
            assert not any(c.startswith("LOGIN") for c in imap.mailbox.commands)

            fake.revoke()
            imap.mailbox.bearer_tokens.clear()
            with pytest.raises(ImapError, match="arbot connect gmail"):
                poll("127.0.0.1", imap.port, "", "", "INBOX", handle, context, oauth=access)
            with pytest.raises(ReconnectNeeded):  # recorded: the next poll does not try again
                access.access_token()
            assert grants.refusal("gmail") is not None
        finally:
            fake.stop()


def test_the_sealed_grant_opens_only_with_its_key(
    keyed: Runtime, clock: FixedClock, database_url: str
) -> None:
    MailboxGrants(keyed).connect("gmail", Tokens("a", "r", clock.now() + timedelta(hours=1), None))
    with keyed.sessions() as session:
        sealed = session.scalars(select(MailboxGrant.ciphertext)).one()
    assert base64.urlsafe_b64decode(sealed)[0] == 0x80  # a Fernet token, nothing readable
    other = start(
        load_settings(env_file=None, database_url=database_url, secret_key="another-key"),
        clock=clock,
        upgrade=False,
    )
    try:
        with pytest.raises(UserError, match="cannot be decrypted"):
            MailboxGrants(other).load("gmail")
    finally:
        other.close()


def test_a_token_endpoint_that_does_not_answer_stops_the_run_charges_no_try_and_is_told_once(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert connect(mail_env, monkeypatch).code == 0
    approved(mail_env, runtime, tmp_path, customers=2)
    plan_posts = len(finance_posts(slack_api))
    monkeypatch.setenv("GMAIL_TOKEN_URL", "http://127.0.0.1:1/token")  # nothing answers there
    at = NOW + timedelta(hours=2)  # the access token has expired: it must be refreshed
    for wait in (0, 1, 5, 15, 60, 60):
        at += timedelta(minutes=wait)
        monkeypatch.setenv("ARBOT_NOW", at.isoformat())
        stopped = mail_env("send")
        assert stopped.code == 1 and "cannot sign in to the mailbox" in stopped.stderr
        assert states(runtime) == {1: "approved", 2: "approved"}
        with runtime.sessions() as session:
            assert set(session.scalars(select(Reminder.attempts))) == {0}
            assert session.scalars(select(Escalation)).all() == []
    told = finance_posts(slack_api)[plan_posts:]
    assert len(told) == 1 and told[0]["text"].startswith("Sending stopped: cannot sign in")
    monkeypatch.setenv("GMAIL_TOKEN_URL", google.token_url)
    resumed = mail_env("send")
    assert resumed.code == 0, resumed.stderr
    assert "Sent 2" in resumed.stdout


def test_the_schedulers_send_tick_tells_the_finance_channel_once_while_the_grant_is_refused(
    mail_env: Any,
    database_url: str,
    clock: FixedClock,
    runtime: Runtime,
    smtp: SmtpServer,
    google: FakeMailOAuth,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from scheduler.jobs import send_tick

    assert connect(mail_env, monkeypatch).code == 0
    approved(mail_env, runtime, tmp_path)
    google.revoke()
    smtp.mailbox.bearer_tokens.clear()
    before = len(finance_posts(slack_api))
    served = start(load_settings(env_file=None), clock=clock)  # what `arbot serve` reads
    try:
        for _ in range(3):  # three minutes of ticks
            send_tick(served)
            clock.advance(timedelta(minutes=1))
    finally:
        served.close()
    told = finance_posts(slack_api)[before:]
    assert len(told) == 1 and "arbot connect gmail" in told[0]["text"]
    assert states(runtime) == {1: "approved"}


def test_connect_microsoft365_asks_for_smtp_imap_and_offline_and_needs_the_matching_preset(
    mail_env: Any, google: FakeMailOAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "MICROSOFT365_CLIENT_ID": CLIENT_ID,
        "MICROSOFT365_CLIENT_SECRET": CLIENT_SECRET,
        "MICROSOFT365_AUTHORIZE_URL": google.authorize_url,
        "MICROSOFT365_TOKEN_URL": google.token_url,
    }.items():
        monkeypatch.setenv(name, value)
    wrong = connect(mail_env, monkeypatch, "microsoft365")  # ARBOT_MAILBOX is still gmail
    assert wrong.code == 1 and "set ARBOT_MAILBOX=microsoft365 first" in wrong.stderr

    monkeypatch.setenv("ARBOT_MAILBOX", "microsoft365")
    connected = connect(mail_env, monkeypatch, "microsoft365")
    assert connected.code == 0, connected.stderr
    assert "Connected the Microsoft 365 mailbox" in connected.stdout
    assert "SMTP.Send" in connected.stdout and "offline_access" in connected.stdout
    assert google.forms[-1]["grant_type"] == "authorization_code"
    assert google.forms[-1]["client_secret"] == CLIENT_SECRET  # in the form, not HTTP Basic


def test_a_sign_in_as_another_mailbox_is_refused_and_nothing_is_stored(
    mail_env: Any, google: FakeMailOAuth, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    google.signs_in_as = "someone.else@brightwater.example"
    refused = connect(mail_env, monkeypatch)
    assert refused.code == 1
    assert "you signed in to Gmail as someone.else@brightwater.example" in refused.stderr
    assert f"sign in as {ADDRESS}" in refused.stderr
    with runtime.sessions() as session:
        assert session.scalars(select(MailboxGrant)).all() == []
