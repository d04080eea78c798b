"""Delivery failures that are not a multipart/report: a mail system's notice as an ordinary
multipart/mixed message from the null sender (`From: <>`, McAfee Email Gateway) with its
delivery-status part inside, or from `post_master@` with the failed `RCPT TO:` in its words
(Verizon, Apache James), or a provider's notice from a no-reply address with the returned
original attached (au one net). Each is a bounce of its failed recipient; a person who forwards
a bounce is still a person. Real samples from ../shared/corpus/ (skipped when absent), and the
project's own."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from integrations.email_in import parse
from tests.support.corpus import corpus_file


def _sisimai(name: str) -> bytes:
    return corpus_file("bounces-sisimai", "maildir", "bsd", name).read_bytes()


@pytest.mark.parametrize(
    ("name", "recipient", "status"),
    [
        ("lhost-mcafee-04.eml", "kijitora@example.com", None),
        ("lhost-apachejames-01.eml", "000000000000@vtext.example.com", None),
        ("lhost-verizon-02.eml", "may-be-straycat-nyaaaaaan@vtext.com", None),
        ("lhost-kddi-01.eml", "kijitora@x0000000000000.dion.ne.jp", None),
    ],
)
def test_a_failed_delivery_notice_in_an_ordinary_message_is_a_bounce_of_its_recipient(
    name: str, recipient: str, status: str | None
) -> None:
    mail = parse(_sisimai(name))

    assert mail.bounce is not None, mail.automatic
    assert mail.bounce.failed_recipients == (recipient,)
    assert mail.bounce.permanent and not mail.bounce.sender_side
    assert mail.bounce.status == status
    assert mail.automatic == "delivery status notification"


def test_a_person_forwarding_a_bounce_inline_is_still_a_person() -> None:
    mail = parse(_sisimai("lhost-sendmail-14.eml"))

    assert (mail.bounce, mail.automatic) == (None, None)


def _mixed_notice(sender: str, status: str = "5.1.1", subject: str = "Delivery Status") -> bytes:
    """A notice as McAfee Email Gateway writes it: multipart/mixed, the status part inside."""
    return (
        f"From: {sender}\r\n"
        "To: bounce+r1@ar.brightwater.example\r\n"
        f"Subject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\n"
        "    --- The following addresses had delivery problems ---\r\n\r\n"
        "<ap@ridgeline.example>   (ap@ridgeline.example... No such user)\r\n\r\n"
        "--B\r\n"
        'Content-Type: message/delivery-status; name="deliverystatus.txt"\r\n'
        'Content-Disposition: attachment; filename="deliverystatus.txt"\r\n\r\n'
        "Original-Recipient: <ap@ridgeline.example>\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} ap@ridgeline.example... No such user\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_null_senders_notice_with_a_status_part_in_a_mixed_message_is_a_hard_bounce() -> None:
    mail = parse(_mixed_notice("<>"))

    assert mail.bounce is not None
    assert mail.bounce.failed_recipients == ("ap@ridgeline.example",)
    assert mail.bounce.status == "5.1.1" and mail.bounce.permanent


def test_a_persons_mail_with_a_status_part_attached_is_no_bounce() -> None:
    """Someone sends us a report they were given, as a file: their mail, not a mail system's."""
    mail = parse(_mixed_notice("Maria Garcia <ap@ridgeline.example>", subject="See attached"))

    assert (mail.bounce, mail.automatic) == (None, None)


def _post_master(words: str, subject: str = "Re:Test message") -> bytes:
    notice = EmailMessage()
    notice["From"] = "post_master@vtext.example.com"
    notice["To"] = "bounce+r1@ar.brightwater.example"
    notice["Subject"] = subject
    notice.set_content(words)
    return notice.as_bytes()


def test_a_post_masters_refusal_names_the_rcpt_to_address_as_the_failed_recipient() -> None:
    mail = parse(
        _post_master(
            "Error: Invalid user address\n\nError message below:\n"
            "550 5.1.1 - Requested action not taken: no such user here\n\nMessage details:\n"
            "  MAIL FROM: bounce+r1@ar.brightwater.example\n"
            "  RCPT TO: 3125550142@vtext.example.com\n"
            "  From: ar@brightwater.example\n"
        )
    )

    assert mail.bounce is not None
    assert mail.bounce.failed_recipients == ("3125550142@vtext.example.com",)
    assert mail.bounce.status == "5.1.1" and mail.bounce.permanent


def test_a_post_masters_delay_notice_changes_nothing() -> None:
    mail = parse(
        _post_master(
            "Your message has not yet been delivered; we will keep trying.\n\n"
            "452 4.2.2 mailbox full\n\n  RCPT TO: 3125550142@vtext.example.com\n",
            subject="Delivery delayed",
        )
    )

    assert mail.bounce is not None
    assert mail.bounce.status == "4.2.2" and not mail.bounce.permanent
    assert mail.bounce.failed_recipients == ()


def test_mail_from_the_null_sender_that_reports_no_failure_is_still_automatic() -> None:
    """Only a mail system writes from `<>`: whatever it says, it is no one's reply."""
    notice = EmailMessage()
    notice["From"] = "Mail Gateway <>"
    notice["To"] = "ar@brightwater.example"
    notice["Subject"] = "Message scanned"
    notice.set_content("Your message was scanned and found clean.")

    mail = parse(notice.as_bytes())

    assert mail.bounce is None and mail.automatic is not None
