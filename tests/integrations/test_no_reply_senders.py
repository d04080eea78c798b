"""Mail from a no-reply address is not automatic for that alone: an accounts-payable portal relays
what a person wrote (a dispute, a question) from its no-reply@ address, and a person must see it.
Machine mail from such an address still says so by its own signs: Auto-Submitted, a bounce's
shape, or an Amazon SES notification's JSON (../shared/corpus/ samples, skipped when absent)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from bot.core.runtime import Runtime
from bot.replies.email import email_needs_triage, handle_email
from bot.replies.match import ReplyRules
from integrations.base.inbound import Triage
from integrations.email_in import parse
from tests.support.corpus import corpus_file


def _portal_notice(**headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Coupa Supplier Portal <no-reply@portal.ridgeline.example>"
    mail["To"] = "ar@brightwater.example"
    mail["Message-ID"] = "<n-1@portal.ridgeline.example>"
    mail["Subject"] = "Invoice INV-1001 disputed by Ridgeline Supply"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(
        "Dana Reyes (Ridgeline Supply) disputed invoice INV-1001:\n\n"
        "We were billed for 40 hours but the work order says 32. Please send a corrected invoice.\n"
    )
    return mail.as_bytes()


def test_a_portals_notice_relaying_a_persons_dispute_from_no_reply_is_for_a_person() -> None:
    mail = parse(_portal_notice())

    assert mail.automatic is None and mail.bounce is None
    assert email_needs_triage(mail)


def test_a_no_reply_notice_that_says_it_was_generated_is_still_automatic() -> None:
    mail = parse(_portal_notice(Auto_Submitted="auto-generated"))

    assert mail.automatic == "Auto-Submitted: auto-generated"


def test_a_portals_relayed_dispute_reaches_a_person_instead_of_only_the_log(
    runtime: Runtime,
) -> None:
    mail = parse(_portal_notice())
    triage = Triage("dispute", 0.9, None, "said disputed")

    with runtime.writing() as session:
        result = handle_email(
            session, mail, _portal_notice(), runtime.clock.now(), ReplyRules("k" * 32), triage
        )

    assert result.outcome == "unmatched"  # waits in Slack for a person to say whose it is


@pytest.mark.parametrize("name", ["lhost-amazonses-12.eml", "lhost-amazonses-13.eml"])
def test_an_ses_delivery_receipt_is_automatic_by_its_own_signature(name: str) -> None:
    raw = corpus_file("bounces-sisimai", "maildir", "bsd", name).read_bytes()

    assert parse(raw).automatic == "an Amazon SES Delivery notification"
