"""Real delivery reports and complaints from ../shared/corpus/ (skipped when it is absent): how
many of sisimai's 629 arbot recognises, and what it makes of the shapes that used to be dropped or
misread (plain-text bounces, empty status blocks, DMARC refusals, ARF complaints)."""

from __future__ import annotations

import pytest

from benchmarks.bounces import measure
from integrations.email_in import parse
from tests.support import REPO

CORPUS = REPO.parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the shared corpus is absent ({CORPUS}): a fresh clone has none"
)


def _mail(name: str) -> bytes:
    return (CORPUS / "mail" / name).read_bytes()


@pytest.mark.slow  # every delivery report in the corpus
def test_at_least_95_percent_of_the_real_bounces_are_recognised_with_their_recipient() -> None:
    total, recognised, with_recipient, confirmed, confirmable, _ = measure(
        CORPUS / "bounces-sisimai" / "maildir" / "bsd"
    )

    assert total == 629
    assert recognised / total >= 0.95
    assert with_recipient / recognised >= 0.95
    assert confirmed / confirmable >= 0.9


@pytest.mark.parametrize(
    ("name", "recipient"),
    [
        ("sisimai-lhost-exim-01.eml", "kijitora@example.ed.jp"),
        ("sisimai-lhost-qmail-01.eml", "kijitora@example.ne.jp"),
        ("sisimai-lhost-yahoo-01.eml", "kijitora@example.org"),
        ("sisimai-lhost-gmail-01.eml", "userunknown@example.jp"),
        ("sisimai-lhost-exchange2003-01.eml", "kijitora@example.jp"),
        ("sisimai-lhost-googlegroups-01.eml", "libsisimai@googlegroups.com"),
        ("sisimai-lhost-mailru-01.eml", "kijitora@example.jp"),
        ("sisimai-lhost-gmx-01.eml", "shironeko@example.jp"),
        ("sisimai-lhost-opensmtpd-01.eml", "apdugoaidugoaidugoaeiudggadi@gmail.com"),
        (
            "sisimai-lhost-googleworkspace-01.eml",
            "neko-nyaan-cat-meeting@google-groups.example.com",
        ),
        ("sisimai-lhost-office365-01.eml", "kijitora@example.com"),
        ("sisimai-lhost-mimecast-02.eml", "sabatora@example.net"),
        ("sisimai-lhost-sendgrid-03.eml", "kijitora@example.org"),
        ("sisimai-rhost-outlook-07.eml", "kijitora@example.com"),
        ("sisimai-rhost-yahooinc-02.eml", "kijitora@y.example.ca"),
    ],
)
def test_a_bounce_of_any_shape_is_a_permanent_failure_of_its_recipient(
    name: str, recipient: str
) -> None:
    bounce = parse(_mail(name)).bounce

    assert bounce is not None
    assert recipient in bounce.failed_recipients
    assert bounce.permanent and not bounce.sender_side


@pytest.mark.parametrize(
    "name",
    [
        "sisimai-lhost-dragonfly-01.eml",
        "sisimai-rhost-google-03.eml",
        "sisimai-lhost-office365-03.eml",
    ],
)
def test_a_refusal_for_our_sending_domain_leaves_the_address_alone(name: str) -> None:
    bounce = parse(_mail(name)).bounce

    assert bounce is not None
    assert bounce.sender_side and not bounce.permanent


@pytest.mark.parametrize("name", ["sisimai-rhost-outlook-06.eml", "mikel-report_422.eml"])
def test_a_delay_notice_is_no_failure(name: str) -> None:
    bounce = parse(_mail(name)).bounce

    assert bounce is not None
    assert bounce.action == "delayed" and not bounce.permanent


@pytest.mark.parametrize(
    ("name", "who"),
    [("sisimai-arf-01.eml", None), ("flanker-complaint-yahoo.eml", "user@yahoo.com")],
)
def test_an_abuse_report_is_a_complaint(name: str, who: str | None) -> None:
    mail = parse(_mail(name))

    assert mail.bounce is not None and mail.bounce.complaint
    assert mail.automatic == "spam complaint"
    assert who is None or who in mail.bounce.recipients


def test_no_auto_reply_or_human_reply_is_taken_for_a_bounce() -> None:
    names = [p.name for p in (CORPUS / "mail").glob("*.eml")]
    people = [
        n for n in names if n.startswith(("talon-", "discourse-", "mikel-j", "sisimai-rfc3834"))
    ]

    assert len(people) >= 15
    assert [n for n in people if parse(_mail(n)).bounce is not None] == []
