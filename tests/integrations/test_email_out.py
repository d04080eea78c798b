"""The email a reminder becomes: whatever names, subjects and bodies it carries, a standard parser
reads back exactly what was written, every line ends in CRLF and stays within SMTP's limit, and a
value that would break the headers makes the message invalid instead of changing it. And the SMTP
sender, against a real server on loopback: one message refused leaves the connection fit for the
next."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.base.outbound import Delivery, Outgoing
from integrations.email_out import SmtpSender, build_email
from tests.support.smtp_server import SmtpServer

# Printable text of any script (letters, marks, digits, punctuation, symbols, spaces).
PRINTABLE = st.characters(categories=("L", "M", "N", "P", "S", "Zs"))
# The same characters without the spaces: every Zs character is a space and no other printable one
# is. Named by category rather than filtered, hypothesis draws a word whole, not a character at a
# time (a filtered alphabet made generating the examples most of the test's 1.9 s of CPU).
PRINTABLE_NOT_SPACE = st.characters(categories=("L", "M", "N", "P", "S"))
WORDS = st.lists(st.text(PRINTABLE_NOT_SPACE, min_size=1), max_size=12)
LINES = st.lists(
    st.one_of(st.text(PRINTABLE, max_size=120), st.text(st.sampled_from("ab é€"), max_size=1100)),
    min_size=1,
    max_size=6,
)


def outgoing(**fields: object) -> Outgoing:
    base: dict[str, object] = {
        "reminder_id": 7,
        "channel": "email",
        "to": "ap@c1.example",
        "to_name": "Maria Garcia",
        "from_email": "ar@brightwater.example",
        "from_name": "Brightwater Supply Co.",
        "subject": "Checking in on invoice INV-1",
        "text": "Hi Maria,\n\nInvoice INV-1 for $1,200.00 is still open.\n",
        "html": "<p>Hi Maria,</p>\n<p>Invoice INV-1 for $1,200.00 is still open.</p>\n",
        "message_id": "<arbot.7.0123456789abcdef@brightwater.example>",
        "reply_to": "ar+r.token@brightwater.example",
        "unsubscribe_mailto": "mailto:ar+u.token@brightwater.example?subject=unsubscribe",
        "unsubscribe_url": "https://arbot.example/unsubscribe/" + "t" * 90,
        "envelope_from": "bounce+token@brightwater.example",
        "date": datetime(2026, 3, 16, 14, 0, tzinfo=UTC),
    }
    base.update(fields)
    return Outgoing(**base)  # type: ignore[arg-type]


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects, message.defects
    return message


def bodies(message: EmailMessage) -> list[str]:
    parts = message.get_payload() if message.is_multipart() else [message]
    assert isinstance(parts, list)
    return [part.get_content().replace("\r\n", "\n") for part in parts]


def test_every_header_and_both_bodies_read_back() -> None:
    data = build_email(outgoing())
    message = parsed(data)
    assert message["From"] == '"Brightwater Supply Co." <ar@brightwater.example>'
    assert message["To"] == "Maria Garcia <ap@c1.example>"
    assert message["Subject"] == "Checking in on invoice INV-1"
    assert message["Date"] == "Mon, 16 Mar 2026 14:00:00 +0000"
    assert message["Message-ID"] == "<arbot.7.0123456789abcdef@brightwater.example>"
    assert message["Reply-To"] == "ar+r.token@brightwater.example"
    assert message["List-Unsubscribe"] == (
        "<mailto:ar+u.token@brightwater.example?subject=unsubscribe>, "
        "<https://arbot.example/unsubscribe/" + "t" * 90 + ">"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert bodies(message) == [outgoing().text, outgoing().html]


def test_a_text_without_html_is_one_plain_part() -> None:
    message = parsed(build_email(outgoing(html=None, unsubscribe_url=None)))
    assert message.get_content_type() == "text/plain"
    assert "List-Unsubscribe-Post" not in message
    assert bodies(message) == [outgoing().text]


@given(
    name=WORDS.map(" ".join),
    subject=WORDS.map(" ".join),
    text=LINES.map("\n".join),
    html=LINES.map("\n".join),
)
def test_any_name_subject_and_body_reads_back_exactly(
    name: str, subject: str, text: str, html: str
) -> None:
    data = build_email(
        outgoing(to_name=name, from_name=name, subject=subject, text=text, html=html)
    )
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)  # CRLF only
    assert max(len(line) for line in lines) <= 998
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    message = parsed(data)
    assert message["To"].addresses[0].display_name == name
    assert message["To"].addresses[0].addr_spec == "ap@c1.example"
    assert message["From"].addresses[0].display_name == name
    assert message["Subject"] == subject
    # A body always ends in a line break (as EmailMessage's did).
    assert bodies(message) == [
        body if body.endswith("\n") else body + "\n" for body in (text, html)
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Invoice\r\nBcc: everyone@example.com"},
        {"to_name": "Maria\nGarcia"},
        {"to": "ap@c1.example\r\nBcc: x@example.com"},
        {"to": "zoë@c1.example"},
        {"message_id": "<a@b>\n"},
        {"from_email": None},
    ],
)
def test_a_value_that_would_break_the_headers_makes_the_message_invalid(
    fields: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        build_email(outgoing(**fields))


@pytest.mark.parametrize(
    ("in_reply_to", "references", "written"),
    [
        (
            "<réponse-2@ridgeline.example>",
            "<a-1@ridgeline.example> <réponse-2@ridgeline.example>",
            (None, "<a-1@ridgeline.example>"),
        ),
        (
            "<a-2@ridgeline.example>",
            "<a-1@ridgeline.example>\r\n <a 2@x> no-brackets <a-2@ridgeline.example>",
            ("<a-2@ridgeline.example>", "<a-1@ridgeline.example> <a-2@ridgeline.example>"),
        ),
        ("<réponse-2@ridgeline.example>", "<réponse-2@ridgeline.example>", (None, None)),
    ],
)
def test_a_message_id_that_cannot_be_written_is_left_out_of_the_threading_headers(
    in_reply_to: str, references: str, written: tuple[str | None, str | None]
) -> None:
    """A customer's mail system may put letters outside ASCII (or spaces) in its Message-IDs; a
    reply to it still goes, threaded by the ids that can be written."""
    message = parsed(
        build_email(
            outgoing(in_reply_to=in_reply_to, references=references, written_by_person=True)
        )
    )
    assert (message["In-Reply-To"], message["References"]) == written


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def two_messages(smtp: SmtpServer) -> tuple[Delivery, Delivery]:
    """Two messages on one sender (one connection, as a lane sends a batch)."""
    first = outgoing(reminder_id=1, message_id="<arbot.1@brightwater.example>")
    second = outgoing(reminder_id=2, to="ap@c2.example", message_id="<arbot.2@brightwater.example>")
    with SmtpSender("127.0.0.1", smtp.port, None, None, False, timeout=5) as sender:
        return sender.send(first), sender.send(second)


@pytest.mark.parametrize(
    ("refusal", "outcome"),
    [
        ("451 4.7.1 Try again later", "transient"),
        ("554 5.6.0 Message content refused", "permanent"),
    ],
)
def test_a_refused_data_command_ends_the_transaction_and_the_next_message_goes(
    smtp: SmtpServer, refusal: str, outcome: str
) -> None:
    """Left open, the next message's MAIL FROM meets 503 (nested MAIL), taken for a refusal of our
    sender address: an outage that stops every lane."""
    smtp.mailbox.refuse_data = [refusal]
    first, second = two_messages(smtp)
    assert first == Delivery(outcome, error=f"SMTP {refusal}")
    assert second == Delivery("sent", provider_id="<arbot.2@brightwater.example>")
    assert smtp.mailbox.message_ids() == ["<arbot.2@brightwater.example>"]
    assert smtp.mailbox.connections == 1


def test_after_email_stopped_on_policy_refusals_the_first_is_ours_until_a_message_is_taken(
    smtp: SmtpServer,
) -> None:
    dmarc = "550 5.7.26 Unauthenticated email from brightwater.example is not accepted"
    content = "550 5.7.1 Message rejected: content policy"
    first = outgoing(reminder_id=1, message_id="<arbot.1@brightwater.example>")
    second = outgoing(reminder_id=2, to="ap@c2.example", message_id="<arbot.2@brightwater.example>")
    smtp.mailbox.refuse_message = [dmarc]
    with SmtpSender("127.0.0.1", smtp.port, None, None, False, timeout=5) as sender:
        sender.refused_before({1}, False)  # the run before stopped on it, nothing taken since
        stopped = sender.send(first)  # refused again at DATA: a message is not given its own
    assert stopped.status == "outage" and "5.7.26" in (stopped.error or "")
    assert "ARBOT_FROM_EMAIL" in (stopped.error or "")
    with SmtpSender("127.0.0.1", smtp.port, None, None, False, timeout=5) as sender:
        sender.refused_before({1}, False)
        taken = sender.send(first)  # the relay takes our mail again
        smtp.mailbox.refuse_message = [content]
        with sender.another() as lane:  # another lane of the same run
            refused = lane.send(second)
    assert taken.status == "sent"
    assert refused == Delivery("permanent", error=f"SMTP {content}")  # that message's alone


def test_a_connection_that_cannot_be_reset_after_a_refused_data_is_dropped_for_a_new_one(
    smtp: SmtpServer,
) -> None:
    smtp.mailbox.refuse_data = ["451 4.7.1 Try again later"]
    smtp.mailbox.hang_up_at_rset = True
    first, second = two_messages(smtp)
    assert first == Delivery("transient", error="SMTP 451 4.7.1 Try again later")
    assert second == Delivery("sent", provider_id="<arbot.2@brightwater.example>")
    assert smtp.mailbox.connections == 2
