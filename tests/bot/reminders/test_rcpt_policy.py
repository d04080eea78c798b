"""A recipient refused by policy at RCPT (5.7.x): when the refusal is about that recipient (it
names the address, or says the recipient is refused), only that message fails and the run goes
on; a relay or login refusal, or a second recipient refused so in one run (or the first, when
email last stopped so and nothing was taken since), is our account's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Contact, Escalation, Reminder
from bot.core.runtime import Runtime
from tests.bot.reminders.test_outbox import approved, mail_env, smtp, states
from tests.bot.reminders.test_send_refusals import _finance_channel, _stopped_posts
from tests.support.smtp_server import SmtpServer

__all__ = ["mail_env", "smtp"]  # fixtures


def _addresses(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return sorted(a for a in session.scalars(select(Contact.email)) if a)


def _reminders(runtime: Runtime) -> list[tuple[str, int, str | None]]:
    with runtime.sessions() as session:
        rows = session.execute(select(Reminder.state, Reminder.attempts, Reminder.error)).all()
    return sorted(((s, a, e) for s, a, e in rows), key=lambda one: (one[0], one[1], one[2] or ""))


@pytest.mark.parametrize(
    "reply",
    [
        "550 5.7.1 <{address}>: Recipient address rejected: Access denied",  # Postfix
        "550 5.7.1 Recipient address rejected: Access denied",
        "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; "
        "Delivery restriction check failed as sender not authenticated",  # Microsoft 365
    ],
)
def test_a_recipient_refused_by_policy_fails_that_message_only_and_the_others_go(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, reply: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    refused = _addresses(runtime)[0]
    words = reply.format(address=refused)
    smtp.mailbox.refuse[refused] = words
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 2" in result.stdout and "failed 1" in result.stdout
    assert sorted(m["To"].split("<")[-1].rstrip(">") for m in smtp.mailbox.messages) == sorted(
        _addresses(runtime)[1:]
    )
    assert _reminders(runtime) == [
        ("failed", 1, f"SMTP 550 {words[4:]}"),  # the relay's words
        ("sent", 1, None),
        ("sent", 1, None),
    ]
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        escalation = session.scalars(select(Escalation)).one()  # a person sees it
    assert escalation.reason == "send_failed"
    assert mail_env("send").code == 0  # nothing is left waiting behind it
    assert len(smtp.mailbox.messages) == 2


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_a_relay_refusing_every_recipient_by_policy_fails_two_reminders_in_all_not_one_a_run(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    slack_api: Any,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: str,
) -> None:
    _finance_channel(monkeypatch, slack_api)
    monkeypatch.setenv("ARBOT_SEND_CONCURRENCY", concurrency)
    approved(mail_env, runtime, tmp_path, customers=4)
    for address in _addresses(runtime):  # every recipient, run after run
        smtp.mailbox.refuse[address] = (
            f"550 5.7.1 <{address}>: Recipient address rejected: Access denied"
        )
    for _ in range(3):  # `arbot serve` sends every minute
        result = mail_env("send")
        assert result.code == 1
        assert "sending stopped" in result.stderr and "Recipient address rejected" in result.stderr
        assert "SMTP_USER" in result.stderr
    left = _reminders(runtime)
    # The first refused; the one email stopped at, refused again for its own recipient in the
    # second run (it may be that recipient's alone); then email stays stopped.
    assert sorted(state for state, _, _ in left) == ["approved"] * 2 + ["failed"] * 2
    assert [attempts for state, attempts, _ in left if state == "approved"] == [0, 0]
    with runtime.sessions() as session:
        assert len(session.scalars(select(Escalation)).all()) == 2
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
    if concurrency == "1":  # the third run meets it first at the reminder it stopped at
        first, then = _stopped_posts(slack_api)
        assert "the SMTP server refuses our mail by policy" in first
        assert "still refuses our mail by policy" in then
        assert "Recipient address rejected" in then
    smtp.mailbox.refuse.clear()  # the relay takes our mail again: the rest go
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert sorted(state for state, _, _ in _reminders(runtime)) == ["failed"] * 2 + ["sent"] * 2


def test_a_second_recipient_refused_by_policy_in_one_run_stops_email_as_our_account(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=4)
    for address in _addresses(runtime)[:2]:
        smtp.mailbox.refuse[address] = (
            f"550 5.7.1 <{address}>: Recipient address rejected: Access denied"
        )
    result = mail_env("send")
    assert result.code == 1
    assert "sending stopped" in result.stderr and "Recipient address rejected" in result.stderr
    assert "SMTP_USER" in result.stderr  # what to check
    left = _reminders(runtime)
    assert [one[:2] for one in left if one[0] == "failed"] == [("failed", 1)]  # the first only
    second = [(attempts, error) for state, attempts, error in left if state == "approved" and error]
    assert len(second) == 1 and second[0][0] == 0  # approved again, no try charged
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        assert len(session.scalars(select(Escalation)).all()) == 1


@pytest.mark.parametrize(
    "reply",
    [
        "554 5.7.1 <{address}>: Relay access denied",
        "550 5.7.1 <{address}>: Authentication required",
        "550 5.7.1 Unable to relay for {address}",
        "554 5.7.1 <ar@brightwater.example>: Sender address rejected: Access denied",
        "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.example",
        "550 5.7.1 Delivery not authorized, message refused",  # says nothing of the recipient
        "530 5.7.0 Must issue a STARTTLS command first",
        "535 5.7.8 Authentication credentials invalid",
        "550 5.7.57 Client not authenticated to send mail during MAIL FROM",
        "550 5.7.26 Recipient address rejected: unauthenticated email is not accepted",
    ],
)
def test_a_relay_or_login_refusal_at_rcpt_stops_the_run_as_our_account(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, reply: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    refused = _addresses(runtime)[0]
    smtp.mailbox.refuse[refused] = reply.format(address=refused)
    result = mail_env("send")
    assert result.code == 1
    assert "sending stopped" in result.stderr and "SMTP_USER" in result.stderr
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}
        assert session.scalars(select(Escalation)).all() == []
        assert 0 in set(session.scalars(select(Reminder.attempts)))
    assert "failed" not in set(states(runtime).values())


def test_a_policy_refusal_of_our_sender_address_stays_our_account(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=2)
    smtp.mailbox.refuse_sender = "553 5.7.1 <ap@c1.example>: Recipient address rejected: no"
    result = mail_env("send")
    assert result.code == 1 and "sending stopped" in result.stderr
    assert set(states(runtime).values()) == {"approved"}
    assert smtp.mailbox.messages == []


@pytest.mark.parametrize(
    ("reply", "unusable"),
    [
        # Exchange Online: no such recipient in the tenant's directory (directory-based blocking)
        ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", True),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP lookup", True),
        ("550 5.4.1 Relay Access Denied ATTR35", False),  # our connector, not the mailbox
        ("554 5.4.6 Routing loop detected", False),
    ],
)
def test_a_recipient_microsoft_365_does_not_know_is_marked_unusable(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    tmp_path: Path,
    reply: str,
    unusable: bool,
) -> None:
    approved(mail_env, runtime, tmp_path)
    smtp.mailbox.refuse["ap@c1.example"] = reply
    mail_env("send")
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.email_unusable_at is not None) is unusable
    if unusable:
        assert states(runtime) == {1: "failed"}


def _readdress_first(runtime: Runtime, address: str) -> None:
    with runtime.writing() as session:
        contact = session.scalars(select(Contact).order_by(Contact.id)).first()
        assert contact is not None
        contact.email = address


@pytest.mark.parametrize(
    "address",
    [
        "ap@atlsupply.com",  # "tls"
        "billing@relaymedical.com",  # "relay"
        "ap@loginworks.com",  # "login"
        "ap@heloisebakery.com",  # "helo"
        "authors@c1.example",  # "auth"
    ],
)
def test_account_words_inside_the_refused_address_do_not_make_it_our_account(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, address: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    _readdress_first(runtime, address)
    words = f"550 5.7.1 <{address}>: Recipient address rejected: Access denied"
    smtp.mailbox.refuse[address] = words
    result = mail_env("send")
    assert result.code == 0, result.stderr  # the others' email does not stop
    assert "Sent 2" in result.stdout and "failed 1" in result.stdout
    assert ("failed", 1, f"SMTP {words}") in _reminders(runtime)
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}


@pytest.mark.parametrize(
    "host", ["mx1.tls-supply.com", "tls-supply.com", "MX.Relay.TLS-Supply.com"]
)
def test_account_words_in_the_recipient_s_own_mail_host_do_not_make_it_our_account(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path, host: str
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    _readdress_first(runtime, "ap@tls-supply.com")
    words = (  # Postfix verifying the address at the customer's own mail server
        "550 5.7.1 <ap@tls-supply.com>: Recipient address rejected: unverified address: "
        f"host {host}[203.0.113.5] said: 550 5.7.1 Access denied"
    )
    smtp.mailbox.refuse["ap@tls-supply.com"] = words
    result = mail_env("send")
    assert result.code == 0, result.stderr  # the others' email does not stop
    assert "Sent 2" in result.stdout and "failed 1" in result.stdout
    assert ("failed", 1, f"SMTP {words}") in _reminders(runtime)


def test_an_exchange_refusal_naming_an_address_with_account_words_marks_it_unusable(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path)
    _readdress_first(runtime, "ap@atlsupply.com")
    smtp.mailbox.refuse["ap@atlsupply.com"] = (
        "550 5.4.1 <ap@atlsupply.com>: Recipient address rejected: Access denied"
    )
    mail_env("send")
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert contact.email_unusable_at is not None
    assert states(runtime) == {1: "failed"}


def test_two_customers_refused_by_policy_fail_each_and_the_others_still_go(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=4)
    refused = _addresses(runtime)[:2]
    for address in refused:
        smtp.mailbox.refuse[address] = (
            f"550 5.7.1 <{address}>: Recipient address rejected: Access denied"
        )
    assert mail_env("send").code == 1  # the second refused stops email: it may be our account
    result = mail_env("send")  # it stopped at is refused again, for its own recipient alone
    assert result.code == 0, result.stderr
    assert sorted(m["To"].split("<")[-1].rstrip(">") for m in smtp.mailbox.messages) == sorted(
        _addresses(runtime)[2:]
    )
    assert sorted(state for state, _, _ in _reminders(runtime)) == ["failed"] * 2 + ["sent"] * 2
    with runtime.sessions() as session:
        assert set(session.scalars(select(Contact.email_unusable_at))) == {None}


def test_a_recipient_and_a_message_refused_by_policy_in_one_run_stop_email_as_one_count(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, customers=3)
    refused = _addresses(runtime)[0]
    smtp.mailbox.refuse[refused] = f"550 5.7.1 <{refused}>: Recipient address rejected: Denied"
    smtp.mailbox.refuse_message = ["550 5.7.1 Message rejected: content policy"]
    result = mail_env("send")
    assert result.code == 1  # two refusals by policy in one run, whichever step: our account's
    assert "sending stopped" in result.stderr and "refuses our mail by policy" in result.stderr
    assert [state for state, _, _ in _reminders(runtime)].count("failed") == 1
