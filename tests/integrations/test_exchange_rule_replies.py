"""Exchange and Outlook.com out-of-office answers carry no Auto-Submitted header, and their subject
("Automatic reply:") is in the mailbox's language; the empty Return-Path that also marks them is
added only where a mailbox takes the message in, so a message posted as it reached a mail service's
MX (SendGrid's raw MIME, Mailgun's body-mime) has none. What marks them in every language is the
header Exchange stamps on whatever a mailbox rule sent: X-MS-Exchange-Inbox-Rules-Loop."""

from __future__ import annotations

from email.header import Header

import pytest

from integrations.email_in import parse
from tests.support.corpus import corpus_file

SUBJECTS = [
    "自動応答: Invoice INV-1001",  # Japanese
    "自动答复: Invoice INV-1001",  # Chinese (simplified)
    "Automatyczna odpowiedź: Invoice INV-1001",  # Polish
    "Автоматический ответ: Invoice INV-1001",  # Russian
    "Automatisk svar: Invoice INV-1001",  # Norwegian, Danish
    "Automaattinen vastaus: Invoice INV-1001",  # Finnish
]


def _encoded(subject: str) -> bytes:
    return Header(subject, "utf-8").encode().encode("ascii")


def _as_posted_by_a_mail_service(raw: bytes, subject: str) -> bytes:
    """The corpus's Exchange out-of-office in another language, as it reached the MX: no
    Return-path yet (the delivering mailbox adds it)."""
    lines = raw.split(b"\n")
    kept = [line for line in lines if not line.lower().startswith(b"return-path:")]
    return b"\n".join(kept).replace(
        b"Subject: Automatic reply: Nyaan", b"Subject: " + _encoded(subject)
    )


@pytest.mark.parametrize("subject", SUBJECTS)
def test_an_exchange_out_of_office_in_any_language_is_automatic(subject: str) -> None:
    raw = corpus_file("mail", "sisimai-rfc3834-04.eml").read_bytes()
    mail = parse(_as_posted_by_a_mail_service(raw, subject))

    assert mail.subject == subject
    assert mail.automatic == "sent by a mailbox rule (X-MS-Exchange-Inbox-Rules-Loop)"
    assert mail.bounce is None


def test_a_message_a_mailbox_rule_sent_is_automatic_whatever_its_subject() -> None:
    raw = (
        "From: Jane Doe <jane@northwind.example>\r\nTo: ar@books.example.com\r\n"
        f"Subject: {_encoded('自動応答: Invoice INV-1001').decode()}\r\n"
        "X-MS-Exchange-Inbox-Rules-Loop: jane@northwind.example\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "12月28日から1月5日まで不在にしております。\r\n"
    ).encode()

    assert parse(raw).automatic == "sent by a mailbox rule (X-MS-Exchange-Inbox-Rules-Loop)"


def test_a_person_replying_from_exchange_is_not_automatic() -> None:
    raw = (
        b"From: Jane Doe <jane@northwind.example>\r\nTo: ar@books.example.com\r\n"
        b"Subject: RE: Invoice INV-1001\r\nX-Auto-Response-Suppress: All\r\n"
        b"X-MS-Has-Attach:\r\nX-MS-TNEF-Correlator:\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nWe will pay on Friday.\r\n"
    )

    assert parse(raw).automatic is None


@pytest.mark.parametrize("name", ["sisimai-rfc3834-02.eml", "sisimai-rfc3834-04.eml"])
def test_an_exchange_out_of_office_names_its_own_mailbox_and_is_automatic(name: str) -> None:
    mail = parse(corpus_file("mail", name).read_bytes())

    assert mail.automatic is not None


def test_a_customer_reply_the_businesss_exchange_mailbox_redirected_is_not_automatic() -> None:
    """The business's Microsoft 365 ar@ mailbox redirects what it receives to the inbound
    provider: Exchange stamps the header with ar@'s own address on every customer reply it
    passes on. The rule that acted is the business's, not the customer's: a person wrote it."""
    raw = (
        b"From: Jane Doe <jane@northwind.example>\r\nTo: ar@books.example.com\r\n"
        b"Subject: RE: Invoice INV-1001\r\n"
        b"X-MS-Exchange-Inbox-Rules-Loop: ar@books.example.com\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"We dispute this invoice: the work was never finished.\r\n"
    )

    assert parse(raw).automatic is None


def test_mail_a_rule_of_another_mailbox_passed_on_is_not_automatic_for_that() -> None:
    raw = (
        b"From: Jane Doe <jane@northwind.example>\r\nTo: ap@northwind.example\r\n"
        b"Subject: RE: Invoice INV-1001\r\n"
        b"X-MS-Exchange-Inbox-Rules-Loop: AP@northwind.example\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease stop emailing me.\r\n"
    )

    assert parse(raw).automatic is None


def test_a_rule_of_the_senders_own_mailbox_among_several_marks_it_automatic() -> None:
    raw = (
        b"From: Jane Doe <Jane@Northwind.example>\r\nTo: ar@books.example.com\r\n"
        b"Subject: Re: Invoice INV-1001\r\n"
        b"X-MS-Exchange-Inbox-Rules-Loop: ar@books.example.com\r\n"
        b"X-MS-Exchange-Inbox-Rules-Loop: jane@northwind.example\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nI will be back on Monday.\r\n"
    )

    assert parse(raw).automatic == "sent by a mailbox rule (X-MS-Exchange-Inbox-Rules-Loop)"
