"""Microsoft's junk mail reporting program (Hotmail, Outlook.com) sends no ARF: staff@hotmail.com
mails the reported message back whole, marked X-HmXmrOriginalRecipient. It is a spam complaint by
that address; a person's mail with a message attached is not. Real samples from sisimai in
../shared/corpus/ (skipped when absent), and the project's own."""

from __future__ import annotations

import pytest

from integrations.email_in import parse
from tests.support.corpus import corpus_file

ORIGINAL_ID = "<arbot.1.0123456789abcdef@brightwater.example>"


@pytest.mark.parametrize("name", ["arf-22.eml", "arf-23.eml", "arf-24.eml"])
def test_a_hotmail_junk_report_is_a_complaint_by_the_marked_address(name: str) -> None:
    mail = parse(corpus_file("bounces-sisimai", "maildir", "bsd", name).read_bytes())

    assert mail.bounce is not None and mail.bounce.complaint
    assert mail.bounce.recipients == ("kijitora@example.com",)
    assert mail.automatic == "spam complaint"


def _report(sender: str, mark: str) -> bytes:
    return (
        f"From: {sender}\r\n"
        "To: ar@brightwater.example\r\n"
        "Subject: complaint about message from 192.0.2.10\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="J"\r\n\r\n'
        "--J\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        f"{mark}"
        "From: ar@brightwater.example\r\nTo: ap@ridgeline.example\r\n"
        f"Subject: Invoice INV-1001 is past due\r\nMessage-ID: {ORIGINAL_ID}\r\n\r\n"
        "Please pay.\r\n"
        "--J--\r\n"
    ).encode()


def test_a_junk_report_names_the_reminder_it_is_about() -> None:
    mail = parse(_report("staff@hotmail.com", "X-HmXmrOriginalRecipient: ap@ridgeline.example\r\n"))

    assert mail.bounce is not None and mail.bounce.complaint
    assert mail.bounce.original_message_id == ORIGINAL_ID
    assert mail.bounce.recipients == ("ap@ridgeline.example",)


@pytest.mark.parametrize(
    ("sender", "mark"),
    [
        ("Maria Garcia <maria@hotmail.com>", "X-HmXmrOriginalRecipient: ap@ridgeline.example\r\n"),
        ("staff@hotmail.com", ""),
    ],
    ids=["a-person-with-the-mark", "unmarked"],
)
def test_anything_else_with_a_message_attached_is_no_complaint(sender: str, mark: str) -> None:
    assert parse(_report(sender, mark)).bounce is None
