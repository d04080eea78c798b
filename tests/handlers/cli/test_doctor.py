"""`arbot doctor` against the local stand-ins of every service, configured healthy and configured
broken: one line per check in words, exit code 1 only when something configured is broken,
`--json` for scripts, nothing ever sent, and a check that hangs or fails stopping no other."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from bot.core.runtime import start
from bot.core.settings import load_settings
from bot.core.slack_access import record_revoked
from bot.ledger.source_tokens import DatabaseTokenStore
from integrations.base.ledger import Tokens
from integrations.doctor.database import check_database
from integrations.doctor.findings import Check, ok, run_checks
from integrations.mailbox_grants import MailboxGrants
from tests.conftest import NOW
from tests.support import REPO, TLS, fake_imap, smtp_server
from tests.support import fake_freshbooks as fb
from tests.support import fake_hubspot as hs
from tests.support import fake_pipedrive as pd
from tests.support import fake_quickbooks as qb
from tests.support import fake_twilio as tw
from tests.support import fake_xero as xe
from tests.support.fake_freshbooks import FakeFreshBooks
from tests.support.fake_hubspot import FakeHubSpot
from tests.support.fake_imap import FakeImap
from tests.support.fake_mail_oauth import CLIENT_ID, CLIENT_SECRET, FakeMailOAuth
from tests.support.fake_pipedrive import FakePipedrive
from tests.support.fake_quickbooks import FakeQuickBooks
from tests.support.fake_stripe import FakeStripe
from tests.support.fake_twilio import FakeTwilio
from tests.support.fake_xero import FakeXero
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.slow  # live checks of a stand-in of every service, some time out

KEY = "doctor-secret-key"
# What a test of the services' answers runs on: the database plays no part in it (the tests of
# stored grants and of nothing configured run on both).
SERVICES_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FROM_NUMBER = "+15005550006"
MAILBOX = "ar@brightwater.example"


@dataclass
class World:
    slack: Any
    smtp: SmtpServer
    imap: FakeImap
    twilio: FakeTwilio
    stripe: FakeStripe
    quickbooks: FakeQuickBooks
    xero: FakeXero
    freshbooks: FakeFreshBooks
    hubspot: FakeHubSpot
    pipedrive: FakePipedrive


@pytest.fixture
def world(slack_api: Any) -> Iterator[World]:
    smtp = SmtpServer(tls=True).start()
    servers = [
        FakeTwilio().start(),
        FakeStripe().start(),
        FakeQuickBooks().start(),
        FakeXero().start(),
        FakeFreshBooks().start(),
        FakeHubSpot().start(),
        FakePipedrive().start(),
    ]
    with FakeImap() as imap:
        yield World(slack_api, smtp, imap, *servers)  # type: ignore[arg-type]
    for server in servers:
        server.stop()
    smtp.stop()


def _store_grants(database_url: str, world: World) -> None:
    settings = load_settings(
        env_file=None,
        database_url=database_url,
        secret_key=KEY,
        quickbooks_client_id=qb.CLIENT_ID,
        quickbooks_client_secret=SecretStr(qb.CLIENT_SECRET),
    )
    runtime = start(settings)
    try:
        store = DatabaseTokenStore(runtime)
        later = NOW + timedelta(hours=1)
        store.save("quickbooks", Tokens("qb-access-0", "qb-refresh-0", later, tenant_id=qb.REALM))
        store.save("xero", Tokens("xero-access-0", "xero-refresh-0", later, tenant_id=xe.TENANT))
        store.save("freshbooks", Tokens("fb-access-0", "fb-refresh-0", later, tenant_id=fb.ACCOUNT))
    finally:
        runtime.close()


@pytest.fixture
def doctor(cli: Any, world: World, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`arbot doctor` with every integration configured, and configured right."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": world.slack.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
        "ARBOT_ESCALATION_CHANNEL": "C0COLLECT",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(world.smtp.port),
        "SMTP_STARTTLS": "true",
        "SMTP_CA_FILE": str(TLS / "cert.pem"),
        "SMTP_USER": smtp_server.USER,
        "SMTP_PASSWORD": smtp_server.PASSWORD,
        "IMAP_HOST": "127.0.0.1",
        "IMAP_PORT": str(world.imap.port),
        "IMAP_USER": fake_imap.USER,
        "IMAP_PASSWORD": fake_imap.PASSWORD,
        "IMAP_CA_FILE": str(TLS / "cert.pem"),
        "TWILIO_ACCOUNT_SID": tw.SID,
        "TWILIO_AUTH_TOKEN": tw.TOKEN,
        "TWILIO_FROM": FROM_NUMBER,
        "TWILIO_API_URL": world.twilio.url,
        "ARBOT_PUBLIC_URL": "https://arbot.brightwater.example",
        "STRIPE_API_KEY": "sk_test_arbot",
        "STRIPE_WEBHOOK_SECRET": "whsec_test",
        "STRIPE_API_BASE": world.stripe.url,
        "ARBOT_SECRET_KEY": KEY,
        "QUICKBOOKS_CLIENT_ID": qb.CLIENT_ID,
        "QUICKBOOKS_CLIENT_SECRET": qb.CLIENT_SECRET,
        "QUICKBOOKS_API_URL": world.quickbooks.url,
        "QUICKBOOKS_TOKEN_URL": world.quickbooks.token_url,
        "XERO_CLIENT_ID": xe.CLIENT_ID,
        "XERO_CLIENT_SECRET": xe.CLIENT_SECRET,
        "XERO_API_URL": world.xero.url,
        "XERO_TOKEN_URL": world.xero.token_url,
        "FRESHBOOKS_CLIENT_ID": fb.CLIENT_ID,
        "FRESHBOOKS_CLIENT_SECRET": fb.CLIENT_SECRET,
        "FRESHBOOKS_API_URL": world.freshbooks.url,
        "FRESHBOOKS_TOKEN_URL": world.freshbooks.token_url,
        "HUBSPOT_TOKEN": hs.TOKEN,
        "HUBSPOT_API_URL": world.hubspot.url,
        "ARBOT_CRM_LOG_ACTIVITY": "true",
        "PIPEDRIVE_TOKEN": pd.TOKEN,
        "PIPEDRIVE_API_URL": world.pipedrive.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _store_grants(database_url, world)
    world.slack.channels["C0COLLECT"] = {"name": "collections"}

    def run(*args: str) -> Any:  # a generous bound: a loaded machine must not fail a check
        return cli(*args) if "--timeout" in args else cli(*args, "--timeout", "60")

    return run


def lines(stdout: str) -> dict[str, list[str]]:
    """Each integration's lines, e.g. {"Slack": ["OK  Slack: ...", ...]}."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        mark, _, rest = line.partition(" ")
        name = rest.strip().split(":", 1)[0]
        if mark in ("OK", "PROBLEM", "--"):
            found.setdefault(name, []).append(line)
    return found


def problems(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("PROBLEM")]


def test_everything_configured_right_is_ok_line_by_line_and_nothing_is_sent(
    doctor: Any, world: World
) -> None:
    result = doctor("doctor")
    assert result.code == 0, result.stdout + result.stderr
    assert problems(result.stdout) == []
    by_name = lines(result.stdout)
    for name in ("Database", "Slack", "SMTP", "IMAP", "Twilio", "Stripe", "QuickBooks", "Xero"):
        assert by_name[name] and all(line.startswith("OK") for line in by_name[name]), name
    for name in ("FreshBooks", "HubSpot", "Pipedrive"):
        assert all(line.startswith("OK") for line in by_name[name]), name
    text = result.stdout
    assert "workspace Test Team (T0TEST)" in text and "the bot is in #finance" in text
    assert "the bot is in #collections (ARBOT_ESCALATION_CHANNEL)" in text
    assert "STARTTLS, signed in as arbot" in text
    assert f"TWILIO_FROM {FROM_NUMBER} belongs to the account" in text
    assert "company Brightwater Supply Co." in text and "crm.objects.contacts.write" in text
    assert "0 problem(s)" in text
    # Live, but nothing sent: no mail, no text, no link, no note, no Slack post.
    assert world.smtp.mailbox.messages == [] and world.twilio.messages == []
    assert world.stripe.calls == [] and world.hubspot.notes == []
    assert world.slack.calls("chat.postMessage") == []
    assert world.imap.mailbox.count("UID FETCH") == 0
    twilio_asked = world.twilio.numbers
    assert twilio_asked == [FROM_NUMBER]


@SERVICES_ONLY
def test_json_lists_every_check_with_its_status_for_scripts(doctor: Any) -> None:
    result = doctor("doctor", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    statuses = {(c["integration"], c["check"]): c["status"] for c in document["checks"]}
    assert statuses[("Slack", "scopes")] == "ok"
    assert statuses[("Twilio", "from")] == "ok"
    assert statuses[("Twilio", "webhooks")] == "ok"
    assert statuses[("HubSpot", "scopes")] == "ok"
    assert set(statuses.values()) == {"ok"}
    assert all(set(c) == {"integration", "check", "status", "message"} for c in document["checks"])


@SERVICES_ONLY
def test_each_broken_integration_is_named_with_what_to_fix_and_the_rest_still_checked(
    doctor: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.slack.scopes.remove("files:write")
    world.slack.channels["C0FINANCE"] = {"name": "finance", "is_member": False}
    world.slack.channels["C0COLLECT"] = None  # gone, or private without the bot
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    monkeypatch.setenv("IMAP_PASSWORD", "wrong")
    world.twilio.numbers = ["+15005550001"]  # TWILIO_FROM is someone else's
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    world.quickbooks.tokens.expire_access()  # refreshed on the 401, then works again
    world.xero.tenant = "another-organisation"  # the organisation was disconnected
    world.freshbooks.tokens.expire_access()
    world.freshbooks.tokens.refresh_token = "revoked"  # the grant itself is gone
    world.hubspot.granted = {
        "crm.objects.companies.read",
        "crm.objects.contacts.read",
        "crm.objects.owners.read",
    }  # the old hint's scopes: no notes
    world.pipedrive.token_refused = True

    result = doctor("doctor")

    assert result.code == 1
    text = " ".join(result.stdout.split())
    assert "the bot token lacks the scope(s) files:write" in text
    assert (
        "the bot is not in #finance (ARBOT_FINANCE_CHANNEL): run /invite @arbot in #finance" in text
    )
    assert "ARBOT_ESCALATION_CHANNEL is 'C0COLLECT', which the bot cannot see" in text
    assert "refused the login (535" in text and "check SMTP_USER and SMTP_PASSWORD" in text
    assert "refused the login" in " ".join(lines(result.stdout)["IMAP"])
    assert f"TWILIO_FROM {FROM_NUMBER} is not a phone number of account {tw.SID}" in text
    assert "payment links are on but STRIPE_WEBHOOK_SECRET is unset" in text
    assert "the organisation another-organisation" not in text  # our tenant is the stored one
    assert f"the organisation {xe.TENANT} is no longer connected to arbot in Xero" in text
    assert "run `arbot connect freshbooks`" in " ".join(lines(result.stdout)["FreshBooks"])
    assert "HUBSPOT_TOKEN lacks the scope(s) crm.objects.contacts.write" in text
    assert "PIPEDRIVE_TOKEN" in " ".join(lines(result.stdout)["Pipedrive"])
    by_name = lines(result.stdout)
    # What works is still said to work.
    assert any(
        line.startswith("OK") and "SLACK_BOT_TOKEN works" in line for line in by_name["Slack"]
    )
    assert all(line.startswith("OK") for line in by_name["QuickBooks"])
    assert any(line.startswith("OK") for line in by_name["Twilio"])
    assert any(line.startswith("OK") for line in by_name["Stripe"])
    assert len(problems(result.stdout)) == 11
    # The expired QuickBooks token was refreshed and the rotated refresh token kept, as sync does.
    assert world.quickbooks.tokens.issued == 1


@SERVICES_ONLY
def test_a_bad_slack_token_and_a_bad_stripe_key_and_twilio_credentials_say_where_to_get_good_ones(
    doctor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_wrong")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "sk_test_arbot")  # the key pasted by mistake
    result = doctor("doctor", "--json")
    assert result.code == 1
    checks = {(c["integration"], c["check"]): c for c in json.loads(result.stdout)["checks"]}
    assert checks[("Slack", "token")]["status"] == "problem"
    assert "Bot User OAuth Token" in checks[("Slack", "token")]["message"]
    assert ("Slack", "scopes") not in checks  # nothing more is asked with a token Slack refused
    assert "Stripe refused STRIPE_API_KEY" in checks[("Stripe", "key")]["message"]
    assert (
        "does not look like an endpoint's signing secret"
        in checks[("Stripe", "webhook")]["message"]
    )
    assert (
        "Twilio refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN"
        in checks[("Twilio", "account")]["message"]
    )


def test_nothing_configured_is_not_a_failure(cli: Any) -> None:
    cli("db", "upgrade")
    result = cli("doctor")
    assert result.code == 0, result.stdout
    by_name = lines(result.stdout)
    for name in ("Slack", "SMTP", "IMAP", "Twilio", "Stripe", "QuickBooks", "HubSpot"):
        assert by_name[name][0].startswith("--"), name
    assert by_name["Database"][0].startswith("OK")


def test_half_a_configuration_is_a_problem(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", tw.SID)
    monkeypatch.setenv("QUICKBOOKS_CLIENT_ID", qb.CLIENT_ID)
    monkeypatch.setenv("QUICKBOOKS_CLIENT_SECRET", qb.CLIENT_SECRET)
    monkeypatch.setenv("ARBOT_SECRET_KEY", KEY)
    cli("db", "upgrade")
    result = cli("doctor")
    assert result.code == 1
    text = " ".join(result.stdout.split())
    assert "set TWILIO_AUTH_TOKEN and TWILIO_FROM too" in text
    assert (
        "QUICKBOOKS_CLIENT_ID is set but QuickBooks is not connected: run `arbot connect quickbooks`"
        in text
    )


def test_the_mailbox_signed_in_by_oauth_is_checked_with_xoauth2_and_a_revoked_grant_says_reconnect(
    doctor: Any, world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    google = FakeMailOAuth(MAILBOX, accept=world.smtp.mailbox.bearer_tokens.__setitem__).start()
    try:
        for name, value in {
            "ARBOT_MAILBOX": "gmail",
            "SMTP_USER": MAILBOX,
            "ARBOT_FROM_EMAIL": MAILBOX,
            "GMAIL_CLIENT_ID": CLIENT_ID,
            "GMAIL_CLIENT_SECRET": CLIENT_SECRET,
            "GMAIL_TOKEN_URL": google.token_url,
            "GMAIL_AUTHORIZE_URL": google.authorize_url,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SMTP_PASSWORD")
        monkeypatch.delenv("IMAP_PASSWORD")
        world.smtp.mailbox.bearer_tokens["ya29.doctor"] = MAILBOX
        world.imap.mailbox.bearer_tokens["ya29.doctor"] = MAILBOX
        runtime = start(load_settings(env_file=None, database_url=database_url, secret_key=KEY))
        try:
            grants = MailboxGrants(runtime)
            grants.connect("gmail", Tokens("ya29.doctor", "1//refresh", NOW + timedelta(hours=1)))
        finally:
            runtime.close()

        healthy = doctor("doctor")
        assert "with Gmail's OAuth grant (XOAUTH2)" in " ".join(lines(healthy.stdout)["SMTP"])
        assert "with Gmail's OAuth grant (XOAUTH2)" in " ".join(lines(healthy.stdout)["IMAP"])
        assert world.smtp.mailbox.xoauth2_logins == ["ya29.doctor"]

        google.revoked = True
        world.smtp.mailbox.bearer_tokens.clear()  # the token stops working before it expires
        world.imap.mailbox.bearer_tokens.clear()
        revoked = doctor("doctor")
        assert revoked.code == 1
        smtp_line = " ".join(lines(revoked.stdout)["SMTP"])
        assert smtp_line.startswith("PROBLEM") and "run `arbot connect gmail`" in smtp_line
    finally:
        google.stop()


@SERVICES_ONLY
def test_a_server_that_never_answers_is_reported_after_the_timeout_and_the_others_still_run(
    doctor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as silent:  # accepts connections and says nothing, like a black hole
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("SMTP_PORT", str(silent.getsockname()[1]))
        result = doctor("doctor", "--timeout", "1")
    assert result.code == 1
    smtp_line = " ".join(lines(result.stdout)["SMTP"])
    assert smtp_line.startswith("PROBLEM")
    assert "timed out" in smtp_line or "no answer within 1 s" in smtp_line
    # Every other check still ran and said something (how much of it finished within one second
    # depends on the machine: the runner's own test covers the rest).
    for name in ("Database", "Slack", "IMAP", "Twilio", "Stripe", "QuickBooks", "HubSpot"):
        assert lines(result.stdout)[name], name


# --- The runner and the database check, directly -------------------------------------------------


def test_a_check_that_hangs_or_raises_is_a_finding_and_the_others_are_kept_in_order() -> None:
    never = threading.Event()

    def hangs() -> list[Any]:
        never.wait(30)
        return []

    def raises() -> list[Any]:
        raise RuntimeError("boom")

    try:
        found = run_checks(
            [
                Check("A", lambda: [ok("A", "x", "fine")]),
                Check("B", hangs),
                Check("C", raises),
                Check("D", lambda: [ok("D", "y", "fine too")]),
            ],
            timeout=0.3,
        )
    finally:
        never.set()
    assert [(f.integration, f.status) for f in found] == [
        ("A", "ok"),
        ("B", "problem"),
        ("C", "problem"),
        ("D", "ok"),
    ]
    assert "no answer within 0.3 s" in found[1].message
    assert "the check itself failed: boom" in found[2].message


def test_a_database_behind_the_head_revision_or_missing_says_run_db_upgrade(tmp_path: Path) -> None:
    missing = check_database(f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert missing[0].status == "problem" and "arbot db upgrade" in missing[0].message
    assert not (tmp_path / "nowhere.db").exists()  # the check creates nothing
    empty = tmp_path / "empty.db"
    empty.touch()
    assert (
        "has no schema yet: run `arbot db upgrade`"
        in check_database(f"sqlite:///{empty}")[0].message
    )
    behind = tmp_path / "behind.db"
    import sqlite3

    with sqlite3.connect(behind) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0015')")
    message = check_database(f"sqlite:///{behind}")[0].message
    assert "at revision 0015, this arbot needs" in message and "arbot db upgrade" in message


def test_the_fake_slack_grants_the_manifests_scopes_by_default() -> None:
    from tests.support.fake_slack import MANIFEST_SCOPES

    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text())
    assert list(MANIFEST_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]


@SERVICES_ONLY
def test_hubspot_read_scopes_are_tried_by_reading_and_the_notes_scope_unknown_is_said(
    doctor: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.hubspot.granted = {
        "crm.objects.companies.read",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
    }
    world.hubspot.describes_token = False  # e.g. a key HubSpot's token description does not know
    result = doctor("doctor", "--json")
    checks = {(c["integration"], c["check"]): c for c in json.loads(result.stdout)["checks"]}
    scopes = checks[("HubSpot", "scopes")]
    assert scopes["status"] == "problem"
    assert "could not be checked: make sure it has crm.objects.contacts.write" in scopes["message"]
    assert "crm.objects.owners.read" in scopes["message"]

    monkeypatch.setenv("ARBOT_CRM_LOG_ACTIVITY", "false")  # no notes: no write scope needed
    result = doctor("doctor", "--json")
    checks = {(c["integration"], c["check"]): c for c in json.loads(result.stdout)["checks"]}
    assert checks[("HubSpot", "scopes")]["message"].startswith(
        "HUBSPOT_TOKEN lacks the scope(s) crm.objects.owners.read:"
    )


def test_a_token_slack_said_was_revoked_is_a_problem_even_if_slack_takes_it_now(
    doctor: Any, database_url: str
) -> None:
    runtime = start(load_settings(env_file=None, database_url=database_url))
    try:
        with runtime.writing() as session:
            record_revoked(session, "xoxb-test", "T0TEST", "app_uninstalled", NOW)
    finally:
        runtime.close()
    result = doctor("doctor")
    assert result.code == 1
    slack = lines(result.stdout)["Slack"]
    assert slack[0].startswith("PROBLEM") and "reinstall" in slack[0]
    assert "set SLACK_BOT_TOKEN to its new bot token" in " ".join(slack[0].split())


def test_what_slack_keeps_refusing_until_a_person_acts_is_a_problem_with_what_to_do(
    doctor: Any, database_url: str
) -> None:
    from bot.core.slack_retries import HISTORY, REDRAW, owe

    runtime = start(load_settings(env_file=None, database_url=database_url))
    try:
        owe(runtime.writes, REDRAW, "C0FINANCE", "1.000100", "is_archived")
        owe(runtime.writes, HISTORY, "C0FINANCE", "1.000200", "is_archived")
        owe(runtime.writes, REDRAW, "C0FINANCE", "1.000300", "ratelimited")  # passes by itself
    finally:
        runtime.close()
    result = doctor("doctor")
    assert result.code == 1
    refused = [line for line in problems(result.stdout) if "keeps refusing" in line]
    assert len(refused) == 1
    text = " ".join(refused[0].split())
    assert "2 message(s) owed in C0FINANCE (is_archived)" in text and "unarchive it" in text


def test_an_escalation_slack_will_not_post_until_a_person_acts_is_a_problem_with_what_to_do(
    doctor: Any, world: World, database_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from bot.core.models import Customer
    from bot.escalations import posting, service
    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv
    from integrations.slack_chat import SlackChat, web_client
    from tests.support.ledger_files import row, write

    runtime = start(load_settings(env_file=None, database_url=database_url))
    try:
        with runtime.writing() as session:
            rows = read_ledger_csv(write(tmp_path / "l.csv", [row()]))
            apply_batch(session, rows, runtime.clock.now())
            customer_id = session.scalars(select(Customer.id)).one()
            service.open_or_add(session, customer_id, "replied", runtime.clock.now())
        world.slack.fail_next("chat.postMessage", "not_in_channel")
        chat = SlackChat(web_client("xoxb-test", world.slack.url))
        assert posting.post_new(runtime, chat, "C0COLLECT") == []
    finally:
        runtime.close()
    result = doctor("doctor")
    assert result.code == 1
    [refused] = [line for line in problems(result.stdout) if "keeps refusing" in line]
    text = " ".join(refused.split())
    assert "1 message(s) owed in C0COLLECT (not_in_channel)" in text and "/invite @arbot" in text


@SERVICES_ONLY
def test_a_messaging_service_as_sender_checks_the_account_and_says_its_numbers_are_not_checked(
    doctor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_FROM", "MG0000000000000000000000000000test")
    result = doctor("doctor")
    twilio = " ".join(lines(result.stdout)["Twilio"])
    assert result.code == 0 and "is a Messaging Service" in twilio
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")
    result = doctor("doctor")
    assert result.code == 1
    assert "Twilio refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN" in result.stdout


@SERVICES_ONLY
def test_twilio_without_arbot_public_url_is_a_problem_its_texts_could_be_refused(
    doctor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARBOT_PUBLIC_URL")
    result = doctor("doctor")
    assert result.code == 1
    (twilio,) = [line for line in problems(result.stdout) if "Twilio" in line]
    said = " ".join(twilio.split())
    assert "ARBOT_PUBLIC_URL is unset" in said
    assert "set ARBOT_PUBLIC_URL to the https:// address Twilio calls" in said


@SERVICES_ONLY
def test_slack_without_a_signing_secret_or_a_finance_channel_is_a_problem(
    doctor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    monkeypatch.delenv("ARBOT_FINANCE_CHANNEL")
    result = doctor("doctor")
    assert result.code == 1
    slack = " ".join(" ".join(lines(result.stdout)["Slack"]).split())
    assert "SLACK_SIGNING_SECRET is unset" in slack
    assert "set ARBOT_FINANCE_CHANNEL to the id of the finance channel" in slack


def test_a_database_server_that_refuses_is_named_without_its_password() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    found = check_database(f"postgresql://arbot:s3cret@127.0.0.1:{port}/arbot")
    assert found[0].status == "problem" and found[0].check == "reachable"
    assert "cannot open the database at postgresql://arbot:***@127.0.0.1" in found[0].message
    assert "s3cret" not in found[0].message


def test_with_arbot_workspace_it_checks_that_workspaces_own_slack_token_and_channel(
    cli: Any, slack_api: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.workspaces.registry import Workspaces
    from tests.support.workspace_setup import BETA, BETA_CHANNEL, deployment_settings, install

    for name, value in {
        "ARBOT_SECRET_KEY": "deployment-secret-key",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": slack_api.url,
        "SLACK_CLIENT_ID": slack_api.client_id,
        "SLACK_CLIENT_SECRET": slack_api.client_secret,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    runtime = start(deployment_settings(database_url, slack_api))
    try:
        install(runtime, Workspaces(runtime), slack_api)
    finally:
        runtime.close()
    slack_api.channels[BETA_CHANNEL] = {"name": "beta-finance", "is_member": False}

    assert cli("doctor").code == 0  # the main workspace
    monkeypatch.setenv("ARBOT_WORKSPACE", BETA)
    result = cli("doctor", "--timeout", "60")
    assert result.code == 1
    slack = " ".join(" ".join(lines(result.stdout)["Slack"]).split())
    assert f"({BETA})" in slack
    assert "the bot is not in #beta-finance (ARBOT_FINANCE_CHANNEL)" in slack
