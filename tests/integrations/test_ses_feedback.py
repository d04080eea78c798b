"""Amazon SES feedback mailed by an SNS email subscription (from no-reply@sns.amazonaws.com, a
JSON body, raw or in SNS's envelope): a permanent bounce is a hard failure of its recipient, a
transient one is not, a complaint is a complaint, a delivery receipt is automatic mail and no
one's reply. Real samples from sisimai in ../shared/corpus/ (skipped when absent), and the
project's own."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

import pytest

from integrations.email_in import parse
from tests.support.corpus import corpus_file


def _sisimai(name: str) -> bytes:
    return corpus_file("bounces-sisimai", "maildir", "bsd", name).read_bytes()


@pytest.mark.parametrize("name", ["lhost-amazonses-09.eml", "lhost-amazonses-10.eml"])
def test_a_permanent_ses_bounce_raw_or_in_snss_envelope_is_a_hard_failure(name: str) -> None:
    mail = parse(_sisimai(name))

    assert mail.bounce is not None
    assert mail.bounce.failed_recipients == ("bounce@simulator.amazonses.com",)
    assert (mail.bounce.status, mail.bounce.permanent) == ("5.1.1", True)


def test_an_ses_complaint_is_a_complaint_of_its_recipient() -> None:
    mail = parse(_sisimai("lhost-amazonses-11.eml"))

    assert mail.bounce is not None and mail.bounce.complaint
    assert mail.bounce.recipients == ("complaint@simulator.amazonses.com",)
    assert mail.automatic == "spam complaint"


@pytest.mark.parametrize("name", ["lhost-amazonses-12.eml", "lhost-amazonses-13.eml"])
def test_an_ses_delivery_receipt_is_automatic_and_no_bounce(name: str) -> None:
    mail = parse(_sisimai(name))

    assert mail.bounce is None and mail.automatic is not None


def _notification(bounce: dict[str, Any], footer: str = "") -> bytes:
    body = {
        "notificationType": "Bounce",
        "bounce": bounce,
        "mail": {
            "source": "ar@brightwater.example",
            "destination": ["ap@ridgeline.example"],
            "headers": [
                {"name": "From", "value": "ar@brightwater.example"},
                {"name": "Message-ID", "value": "<arbot.1.0123456789abcdef@brightwater.example>"},
            ],
        },
    }
    envelope = {"Type": "Notification", "Message": json.dumps(body)}
    mail = EmailMessage()
    mail["From"] = "AWS Notifications <no-reply@sns.amazonaws.com>"
    mail["To"] = "ar@brightwater.example"
    mail["Subject"] = "AWS Notification Message"
    mail.set_content(json.dumps(envelope, indent=2) + footer)
    return mail.as_bytes()


def test_an_ses_bounce_finds_our_message_by_the_message_id_it_carried() -> None:
    bounce = {
        "bounceType": "Permanent",
        "bouncedRecipients": [
            {
                "emailAddress": "ap@ridgeline.example",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
    }
    footer = "\n\n--\nIf you wish to stop receiving notifications from this topic, unsubscribe.\n"

    found = parse(_notification(bounce, footer)).bounce

    assert found is not None and found.permanent
    assert found.original_message_id == "<arbot.1.0123456789abcdef@brightwater.example>"
    assert found.failed_recipients == ("ap@ridgeline.example",)


def test_a_transient_ses_bounce_leaves_the_address_alone() -> None:
    """SES gave up on this message (a full mailbox), not on the address."""
    bounce = {
        "bounceType": "Transient",
        "bounceSubType": "MailboxFull",
        "bouncedRecipients": [
            {"emailAddress": "ap@ridgeline.example", "action": "failed", "status": "4.2.2"}
        ],
    }

    found = parse(_notification(bounce)).bounce

    assert found is not None
    assert not found.permanent and found.failed_recipients == ()
    assert found.recipients == ("ap@ridgeline.example",)


def test_an_ses_delivery_receipt_of_our_own_is_automatic() -> None:
    mail = EmailMessage()
    mail["From"] = "AWS Notifications <no-reply@sns.amazonaws.com>"
    mail["To"] = "ar@brightwater.example"
    mail["Subject"] = "AWS Notification Message"
    receipt = {"notificationType": "Delivery", "mail": {"destination": ["ap@ridgeline.example"]}}
    mail.set_content(json.dumps(receipt))

    parsed = parse(mail.as_bytes())

    assert parsed.bounce is None and parsed.automatic == "an Amazon SES Delivery notification"
