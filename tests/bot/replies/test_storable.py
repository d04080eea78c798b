"""What a customer sent is made storable before anything reads it: a NUL and a lone surrogate
(which PostgreSQL, or UTF-8 itself, refuses) become U+FFFD, values fit their columns, and the
bytes as they came are kept whenever the text is not exactly them."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core.models import InboundMessage
from bot.core.runtime import Runtime
from bot.replies.flows import receive_email
from bot.replies.storable import storable, storable_email, storable_raw
from bot.replies.triage import RuleClassifier
from integrations.base.inbound import Bounce, InboundEmail

FFFD = "\ufffd"
MAIL = InboundEmail(
    sender="who@else.example",
    sender_name=None,
    subject="Re: statement",
    message_id="<m1@else.example>",
    in_reply_to=(),
    references=(),
    recipients=("ar@brightwater.example",),
    text="Who is this?",
    full_text="Who is this?",
    automatic=None,
    bounce=None,
)


@given(st.text())
def test_storable_text_holds_no_nul_or_lone_surrogate_and_keeps_everything_else(
    value: str,
) -> None:
    clean = storable(value)

    assert "\x00" not in clean and not any("\ud800" <= c <= "\udfff" for c in clean)
    assert len(clean) == len(value)
    assert [a for a, b in zip(value, clean, strict=True) if a != b] == [
        c for c in value if c == "\x00" or "\ud800" <= c <= "\udfff"
    ]


@given(st.binary())
def test_raw_bytes_are_kept_exactly_when_the_text_is_not_them(raw: bytes) -> None:
    text, kept = storable_raw(raw)

    assert "\x00" not in text
    if kept is None:
        assert text.encode("utf-8") == raw
    else:
        assert kept == raw


def test_a_text_with_a_lone_surrogate_keeps_its_bytes_as_they_came() -> None:
    assert storable_raw("caf\udce9 ok") == (f"caf{FFFD} ok", b"caf\xed\xb3\xa9 ok")
    assert storable_raw("all fine ✓") == ("all fine ✓", None)


def test_every_text_of_a_mail_is_storable_and_fits_its_column() -> None:
    bounce = Bounce(
        action="failed",
        recipients=("a\x00@x.example",),
        failed_recipients=(),
        status="5.1.1",
        permanent=True,
        diagnostic="550 \udc80 no such user",
        original_message_id=None,
    )
    mail = replace(
        MAIL,
        sender="x" * 400 + "\x00",
        subject="Re:\x00",
        message_id="<" + "m" * 2000 + ">",
        references=("<r\x00@x>",),
        text="we dis\udcffpute",
        bounce=bounce,
    )

    clean = storable_email(mail)

    assert len(clean.sender) == 320 and len(clean.message_id or "") == 998
    assert clean.subject == f"Re:{FFFD}" and clean.references == (f"<r{FFFD}@x>",)
    assert clean.text == f"we dis{FFFD}pute"
    assert clean.bounce is not None
    assert clean.bounce.recipients == (f"a{FFFD}@x.example",)
    assert clean.bounce.diagnostic == f"550 {FFFD} no such user"


def test_a_mail_with_lone_surrogates_from_a_bad_decode_is_stored(runtime: Runtime) -> None:
    mail = replace(
        MAIL,
        sender="who\udce9@else.example",
        subject="Re: caf\udce9",
        text="Qui \udce9tes-vous ?",
    )

    result = receive_email(
        runtime,
        mail,
        "Subject: Re: caf\udce9\n\nQui \udce9tes-vous ?",
        classifier=RuleClassifier(),
        slack=None,
    )

    assert result.outcome == "unmatched"
    with runtime.sessions() as session:
        message = session.scalars(select(InboundMessage)).one()
    assert (message.sender, message.subject, message.text) == (
        f"who{FFFD}@else.example",
        f"Re: caf{FFFD}",
        f"Qui {FFFD}tes-vous ?",
    )
    assert message.raw_bytes == "Subject: Re: caf\udce9\n\nQui \udce9tes-vous ?".encode(
        "utf-8", "surrogatepass"
    )
