"""Reminders that carry copies of their invoices, end to end: `arbot plan` marks them (the
setting or the step), `arbot send` fetches each copy from the ledger CSV's pdf_url (a real HTTP
server) or its folder and hands the email to a real SMTP server with the PDF attached, once. A
kept copy serves until its invoice changes; a copy that cannot be had, or one that would make the
email too large, keeps the email from going and a person is told why; a source that is down
makes it wait."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Escalation, Invoice, InvoiceDocument, Reminder, ReminderAttachment
from bot.core.runtime import Runtime
from bot.ledger.invoice_copies import invoice_copies
from bot.planning.posting import cards_for
from bot.reminders.attaching import MIME_HEADROOM, message_size
from integrations.base.documents import CopyFetchers
from integrations.base.outbound import Attachment, Outgoing
from integrations.email_out import build_email
from integrations.invoice_files import InvoiceFiles
from playbooks.model import Step
from tests.support.fake_http import LocalServer
from tests.support.ledger_files import HEADER, a_week_late, write
from tests.support.smtp_server import SmtpServer

SECRET = "test-secret-key"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


class _Host(BaseHTTPRequestHandler):
    files: dict[str, bytes]
    hits: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = self.files.get(self.path)
        status = 200 if body is not None else 503 if self.path == "/down.pdf" else 404
        body = body if body is not None else b"no"
        self.send_response(status)
        self.send_header("Content-Type", "application/pdf" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Host:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/I-1.pdf": PDF}
        self.hits: list[str] = []
        self.server = LocalServer(type("Host", (_Host,), {"files": self.files, "hits": self.hits}))

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def host() -> Iterator[Host]:
    serving = Host()
    serving.server.start()
    yield serving
    serving.server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_env(cli: Any, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "ARBOT_FROM_EMAIL": "ar@brightwater.example",
        "ARBOT_SECRET_KEY": SECRET,
        "ARBOT_BUSINESS_NAME": "Brightwater Supply Co.",
        "ARBOT_ATTACH_INVOICE_PDF": "true",
        "ARBOT_ALLOW_PRIVATE_PDF_HOSTS": "127.0.0.1",  # the local file server
    }.items():
        monkeypatch.setenv(name, value)
    return cli


def approved(cli: Any, runtime: Runtime, tmp_path: Path, **fields: str) -> None:
    """One customer's invoice I-1, a week late, planned and approved."""
    ledger = write(tmp_path / "l.csv", a_week_late(1, **fields), header=[*HEADER, "pdf_url"])
    assert cli("import-csv", str(ledger)).code == 0
    assert cli("plan").code == 0
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.state == "planned")
            .values(state="approved", approved_by="U0APPROVER", approved_at=runtime.clock.now())
        )


def attached(message: Message) -> list[tuple[str, str | None, bytes]]:
    return [
        (part.get_content_type(), part.get_filename(), part.get_payload(decode=True))
        for part in message.walk()
        if part.get_content_disposition() == "attachment"
    ]


def test_the_email_reaches_smtp_once_with_the_invoice_pdf_attached(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, host: Host, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    result = mail_env("send")
    assert result.code == 0, result.stderr
    assert "Sent 1" in result.stdout
    assert mail_env("send").code == 0  # nothing more
    (message,) = smtp.mailbox.messages
    assert message.get_content_type() == "multipart/mixed"
    body, _pdf = message.get_payload()  # type: ignore[misc]
    assert body.get_content_type() == "multipart/alternative"
    assert "$1,200.00" in body.get_payload()[0].get_payload(decode=True).decode()
    assert attached(message) == [("application/pdf", "I-1.pdf", PDF)]
    assert host.hits == ["/I-1.pdf"]
    with runtime.sessions() as session:
        (kept,) = session.scalars(select(InvoiceDocument)).all()
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.state == "sent"
    assert (kept.origin, kept.sha256, kept.size) == (
        "pdf_url",
        hashlib.sha256(PDF).hexdigest(),
        len(PDF),
    )


def test_without_the_setting_or_a_step_asking_nothing_is_attached(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    host: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBOT_ATTACH_INVOICE_PDF", "false")
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    assert "Sent 1" in mail_env("send").stdout
    (message,) = smtp.mailbox.messages
    assert message.get_content_type() == "multipart/alternative"
    assert attached(message) == [] and host.hits == []


def test_a_kept_copy_serves_until_its_invoice_changes(
    mail_env: Any, runtime: Runtime, host: Host, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    fetchers = CopyFetchers(None, InvoiceFiles(None, allow_private_hosts=["127.0.0.1"]))
    with runtime.sessions() as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
    first = invoice_copies(runtime, [invoice_id], fetchers, 10_000_000)
    again = invoice_copies(runtime, [invoice_id], fetchers, 10_000_000)
    assert first == again and [a.filename for a in first] == ["I-1.pdf"]
    assert host.hits == ["/I-1.pdf"]  # the second took the kept copy
    host.files["/I-1.pdf"] = PDF.replace(b"1 0 obj", b"2 0 obj")  # re-issued, part paid
    with runtime.writing() as session:
        session.execute(update(Invoice).values(balance=500))
    (changed,) = invoice_copies(runtime, [invoice_id], fetchers, 10_000_000)
    assert host.hits == ["/I-1.pdf", "/I-1.pdf"]
    assert changed.data == host.files["/I-1.pdf"]
    with runtime.sessions() as session:
        kept = session.scalars(select(InvoiceDocument)).all()
    assert [k.sha256 for k in kept] == [hashlib.sha256(changed.data).hexdigest()]


def test_a_copy_that_cannot_be_had_keeps_the_email_from_going_and_a_person_is_told(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    slack_api: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    monkeypatch.setenv("ARBOT_INVOICE_PDF_DIR", str(folder))
    approved(mail_env, runtime, tmp_path)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
    }.items():
        monkeypatch.setenv(name, value)
    result = mail_env("send")
    assert "reminder 1 cancelled: no_invoice_copy" in result.stdout
    assert "I-1.pdf" in result.stdout
    assert smtp.mailbox.messages == []
    told = [c["text"] for c in slack_api.calls("chat.postMessage") if c["channel"] == "C0FINANCE"]
    assert told == [
        "Reminder 1 was not sent: it was to carry a copy of an invoice, and the copy of invoice "
        f"I-1 in ARBOT_INVOICE_PDF_DIR is missing: put I-1.pdf in {folder}. A person has the "
        "account in its escalation thread."
    ]
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        escalation = session.scalars(select(Escalation)).one()
    assert reminder is not None and reminder.state == "cancelled"
    assert escalation.reason == "no_invoice_copy"
    assert escalation.detail is not None and "invoice I-1" in escalation.detail
    (folder / "I-1.pdf").write_bytes(PDF)  # the copy is there now: nothing goes by itself
    assert mail_env("send").code == 0 and smtp.mailbox.messages == []


def test_a_pdf_url_on_a_private_network_is_not_fetched_and_the_reminder_says_why(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    host: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARBOT_ALLOW_PRIVATE_PDF_HOSTS")
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    result = mail_env("send")
    assert "reminder 1 cancelled: no_invoice_copy" in result.stdout
    assert smtp.mailbox.messages == [] and host.hits == []
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.state == "cancelled"
    assert reminder.error == (
        f"the copy of invoice I-1 at its pdf_url is not fetched: {host.url}/I-1.pdf is at "
        "127.0.0.1, a loopback address, not on the public internet; give an address on the "
        "public internet in the ledger CSV, or list your own file server's address in "
        "ARBOT_ALLOW_PRIVATE_PDF_HOSTS"
    )


def test_a_source_that_is_down_makes_the_email_wait_and_try_again(
    mail_env: Any, runtime: Runtime, smtp: SmtpServer, host: Host, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/down.pdf")
    result = mail_env("send")
    assert "retrying 1" in result.stdout
    assert smtp.mailbox.messages == []
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
    assert reminder is not None and reminder.state == "approved" and reminder.attempts == 1
    assert reminder.send_after is not None and reminder.send_after > runtime.clock.now()
    assert reminder.error is not None and "503" in reminder.error


def test_copies_that_make_the_email_too_large_are_refused_saying_by_how_much(
    mail_env: Any,
    runtime: Runtime,
    smtp: SmtpServer,
    host: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host.files["/I-1.pdf"] = PDF + b"%" * 3000  # fits alone, not with the text as base64
    monkeypatch.setenv("ARBOT_MAX_MESSAGE_MB", "0.005")
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    result = mail_env("send")
    assert "reminder 1 cancelled: message_too_large" in result.stdout
    assert "over the 5 kB limit (ARBOT_MAX_MESSAGE_MB)" in result.stdout
    assert smtp.mailbox.messages == []


def test_a_steps_own_say_wins_over_the_setting_and_a_text_carries_none() -> None:
    base = {"key": "plus7", "offset_days": 7, "tone": "polite", "template": "polite"}
    assert Step(**base, channels=("email",)).attaches_copies(True)
    assert not Step(**base, channels=("email",), attach_invoice_pdf=False).attaches_copies(True)
    assert Step(**base, channels=("email",), attach_invoice_pdf=True).attaches_copies(False)
    with pytest.raises(ValueError, match="needs the email channel"):
        Step(**base, channels=("sms",), attach_invoice_pdf=True)


def test_the_plan_marks_the_copies_of_email_reminders_only(
    mail_env: Any, runtime: Runtime, host: Host, tmp_path: Path
) -> None:
    approved(mail_env, runtime, tmp_path, pdf_url=f"{host.url}/I-1.pdf")
    with runtime.sessions() as session:
        marks = session.execute(
            select(ReminderAttachment.reminder_id, Invoice.number).join(
                Invoice, Invoice.id == ReminderAttachment.invoice_id
            )
        ).all()
    assert [tuple(m) for m in marks] == [(1, "I-1")]
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None
        (card,) = cards_for(session, [reminder], "America/New_York")
    assert card.copies == ("I-1",)  # the approver sees the email carries it


def test_the_size_counted_against_the_limit_is_never_below_the_email_as_sent() -> None:
    for size in (1, 1000, 250_000, 1_000_003):
        pdf = b"%PDF-" + b"\xff" * (size - 1)
        outgoing = Outgoing(
            1,
            "email",
            "ap@c1.example",
            "Maria García",
            "ar@brightwater.example",
            "Brightwater",
            "Invoice I-1",
            "Hello Maria,\n" * 200,
            "<p>Hello Maria</p>" * 200,
            "<arbot.1.x@brightwater.example>",
            "ar+r.t@brightwater.example",
            "mailto:ar+u.t@brightwater.example",
            "https://arbot.example/unsubscribe/t",
            attachments=(Attachment("I-1.pdf", "application/pdf", pdf),),
        )
        sent = len(build_email(outgoing))
        assert sent <= message_size(outgoing, outgoing.attachments) <= sent + MIME_HEADROOM


def test_plan_json_names_the_copies_each_email_will_carry(
    mail_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = write(tmp_path / "l.csv", a_week_late(1), header=[*HEADER, "pdf_url"])
    assert mail_env("import-csv", str(ledger)).code == 0
    planned = json.loads(mail_env("plan", "--dry-run", "--json").stdout)
    assert [(r["channel"], r["copies"]) for r in planned["reminders"]] == [("email", ["I-1"])]
    monkeypatch.setenv("ARBOT_ATTACH_INVOICE_PDF", "false")
    planned = json.loads(mail_env("plan", "--dry-run", "--json").stdout)
    assert [r["copies"] for r in planned["reminders"]] == [[]]
