"""Inbound email parsing against real-shaped messages: what the customer wrote, how it matches a
reminder, whether a machine sent it, what a bounce says, and that nothing malformed raises."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import compat32

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.tokens import reminder_ids, token, tokens
from integrations.base.inbound import InboundEmail
from integrations.email_in import html_to_text, parse, strip_reply
from tests.support import MAIL_SAMPLES
from tests.support.corpus import corpus_file

SAMPLES = MAIL_SAMPLES
# The samples' tokens were signed with this key for reminder 7 (bot.core.tokens.token).
SECRET = "sample-secret-key"
REPLY_TO = "ar+r.7.39dfa579e04d3266563e@example.com"
ORIGINAL = "<arbot.7.abcdef0123456789@example.com>"


def raw_sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def sample(name: str) -> InboundEmail:
    return parse(raw_sample(name))


def without_plain_part(raw: bytes) -> bytes:
    """The same message as its HTML part alone (as an HTML-only client would send it)."""
    message = email.message_from_bytes(raw, policy=compat32)
    html: list[Message | str] = [p for p in message.walk() if p.get_content_type() == "text/html"]
    message.set_payload(html)
    return message.as_bytes()


def a_message(headers: dict[str, str], body: str = "We will pay on Friday.") -> bytes:
    lines = {"From": "Jane Doe <jane@northwind.example>", "To": REPLY_TO, **headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in lines.items())
    return f"{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n".encode()


# --- what the customer wrote, sample by sample ------------------------------------------------

WRITTEN = {
    "gmail_reply": "Hi,\n\nWe sent the payment for INV-1001 this morning by ACH. It should arrive "
    "by Wednesday.\n\nCould you send me a copy of INV-1002? I can't find it in our system.",
    "outlook_reply": "Hi,\n\nWe dispute the second line of INV-2002: the on-site visit on March 2 "
    "was cancelled.\nPlease send a corrected invoice.",
    "html_only_reply": "Hello,\n\nWe will pay INV-3003 (€1 250,00) on March 20 — our payment run "
    "is every Friday.\n\nIs a partial payment of 50 % today okay?\nOur reference is PO 88\u201112 "
    "& cost centre 4.",
    "iphone_reply": "Got it, I\u2019ll pay tonight.",
    "latin1_quoted_printable": "Bonjour,\n\nNous avons bien reçu votre relance pour la facture "
    "FA-2026-014.\nLe règlement de 1 250,00 EUR partira par virement jeudi prochain.",
    "base64_utf8": "Guten Tag,\n\ndie Rechnung RE-4711 über 980,00 € wird am Freitag überwiesen.",
    # No sign-off above the name: it may be part of what she wrote, so it stays.
    "reply_to_token_address": "Hi, who should I talk to about a payment plan for our open "
    "invoices?\nWe can pay half now and half in April.\n\nMaria",
    "no_match": "Hello, attached is our updated W-9 as requested by your purchasing team.\n\nTom",
    "out_of_office_auto_submitted": "I am on vacation until March 23 with limited access to "
    "email.\nFor anything urgent please write to ap@northwind.example.",
}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_text_is_exactly_what_the_customer_wrote(name: str) -> None:
    assert sample(name).text == WRITTEN[name]


@pytest.mark.parametrize("name", ["gmail_reply", "outlook_reply"])
def test_the_html_part_alone_gives_the_same_text_as_the_plain_part(name: str) -> None:
    html_only = parse(without_plain_part(raw_sample(name)))

    assert html_only.text == WRITTEN[name]
    assert "Acme Accounts Receivable" in html_only.full_text  # the history is still in full_text


def test_a_gmail_reply_gives_every_header_field() -> None:
    reply = sample("gmail_reply")

    assert reply.sender == "jane.doe@northwind.example"
    assert reply.sender_name == "Jane Doe"
    assert reply.subject == "Re: Invoice INV-1001 is due today"
    assert reply.message_id == "<CAH2kq9v1x3sRq+Xk5bLwqP0mE8_yZ4n@mail.gmail.com>"
    assert reply.in_reply_to == (ORIGINAL,)
    assert reply.references == (ORIGINAL,)
    assert reply.recipients == (REPLY_TO,)
    assert reply.automatic is None
    assert reply.bounce is None


def test_full_text_keeps_the_quoted_history_and_signature_that_text_drops() -> None:
    reply = sample("gmail_reply")

    assert "Invoice INV-1001 for $1,200.00 is due today." in reply.full_text
    assert "Accounts Payable | Northwind Traders" in reply.full_text
    assert "$1,200.00" not in reply.text
    assert "Northwind Traders" not in reply.text


def test_an_html_only_message_loses_styles_scripts_and_quotes_but_keeps_line_breaks() -> None:
    reply = sample("html_only_reply")

    assert "font-family" not in reply.full_text
    assert "never shown" not in reply.full_text
    assert "nested quote" in reply.full_text  # full_text is the whole message
    assert "On 3/16/26 10:02 AM, Acme Accounts Receivable wrote:" in reply.full_text
    assert "Lena Fischer" not in reply.text  # the "-- " signature inside <pre>


def test_outlook_recipients_include_cc_and_the_delivery_headers() -> None:
    assert sample("outlook_reply").recipients == (REPLY_TO, "ap@contoso.example")


def test_encoded_headers_are_decoded() -> None:
    latin1 = sample("latin1_quoted_printable")
    utf8 = sample("base64_utf8")

    assert (latin1.sender_name, latin1.subject) == (
        "François Léger",
        "RE : Facture FA-2026-014 échue",
    )
    assert (utf8.sender_name, utf8.subject) == ("Jürgen Weiß", "Re: Rechnung RE-4711 überfällig")


@pytest.mark.parametrize("sender", ["Ana@Bücher.de", "ana@xn--bcher-kva.de"])
def test_a_sender_at_an_internationalised_domain_reads_as_contacts_are_stored(sender: str) -> None:
    """The ledger stores such an address with its domain in ASCII (IDNA) form, so a reply from
    it, written either way, is found by its sender."""
    raw = f"From: Ana <{sender}>\r\nTo: ar@x.example\r\nSubject: hi\r\n\r\nhello\r\n"
    assert parse(raw.encode("utf-8")).sender == "ana@xn--bcher-kva.de"


# --- matching: tokens and threading ------------------------------------------------------------


def test_a_reply_to_the_reply_address_matches_by_its_token_without_any_threading_headers() -> None:
    reply = sample("reply_to_token_address")

    assert (reply.in_reply_to, reply.references) == ((), ())
    assert tokens(reply.recipients, "+r.") == ("7.39dfa579e04d3266563e",)
    assert reminder_ids(reply.recipients, SECRET, "reply") == (7,)


def test_the_unsubscribe_mailto_matches_as_unsubscribe_and_not_as_a_reply() -> None:
    request = sample("unsubscribe_mailto")

    assert reminder_ids(request.recipients, SECRET, "unsubscribe") == (7,)
    assert reminder_ids(request.recipients, SECRET, "reply") == ()
    assert request.automatic is None


def test_a_bounce_matches_by_its_envelope_token() -> None:
    bounce = sample("dsn_bounce")

    assert tokens(bounce.recipients, "bounce+") == ("7.448550aabafd79fd1904",)
    assert reminder_ids(bounce.recipients, SECRET, "bounce") == (7,)


def test_a_tampered_or_misused_token_does_not_verify() -> None:
    tampered = REPLY_TO.replace("39df", "39de")
    reply_as_bounce = f"bounce+{token(SECRET, 7, 'reply')}@example.com"

    assert tokens([tampered], "+r.") == ("7.39dea579e04d3266563e",)
    assert reminder_ids([tampered], SECRET, "reply") == ()
    assert reminder_ids([reply_as_bounce], SECRET, "bounce") == ()
    assert reminder_ids([REPLY_TO], "another-key", "reply") == ()


def test_token_prefixes_are_found_only_where_they_belong() -> None:
    addresses = [
        "+r.1@example.com",  # a subaddress needs a mailbox name before it
        "ar+bounce+2@example.com",  # VERP starts the local part
        "AR+R.3.ABC@EXAMPLE.COM",
        "bounce+4.def@example.com",
    ]

    assert tokens(addresses, "+r.") == ("3.abc",)
    assert tokens(addresses, "bounce+") == ("4.def",)


def test_a_message_matching_nothing_has_no_tokens_and_only_its_own_thread_ids() -> None:
    message = sample("no_match")

    for prefix in ("+r.", "+u.", "bounce+"):
        assert tokens(message.recipients, prefix) == ()
    assert message.in_reply_to == ("<CAF9x2kq8Lm0nOpQ1rS2tU3vW4xY5z@mail.gmail.com>",)
    assert ORIGINAL not in message.references
    assert message.automatic is None


# --- automatic messages ------------------------------------------------------------------------


def test_an_out_of_office_is_automatic_because_of_its_auto_submitted_header() -> None:
    raw = raw_sample("out_of_office_auto_submitted")
    stripped = raw.replace(b"Auto-Submitted: auto-replied\n", b"")

    assert parse(raw).automatic == "Auto-Submitted: auto-replied"
    assert parse(stripped).automatic is None  # the same words from a person are a reply


def test_an_out_of_office_is_recognised_by_its_subject_alone() -> None:
    assert sample("out_of_office_subject_only").automatic == "subject of an out-of-office reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Invoice INV-2002",
        "Automatic reply: Invoice INV-2002",
        "Autoreply: Invoice INV-2002",
        "Auto: Invoice INV-2002",
        "Abwesenheitsnotiz: Rechnung RE-4711",
        "Réponse automatique : Facture FA-2026-014",
        "I am out of the office until 3/23",
        "[Auto-Reply] Invoice INV-2002",
    ],
)
def test_out_of_office_subjects_are_automatic(subject: str) -> None:
    assert parse(a_message({"Subject": subject})).automatic == "subject of an out-of-office reply"


@pytest.mark.parametrize(
    "subject",
    ["Re: Out of office next week?", "Re: Invoice INV-2002", "Automatic payments", "Autopay"],
)
def test_a_person_writing_about_absence_is_not_automatic(subject: str) -> None:
    assert parse(a_message({"Subject": subject})).automatic is None


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Auto-Submitted", "auto-generated", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted", "auto-replied; owner-email=jane@x", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted", "no", None),
        ("X-Autoreply", "yes", "X-Autoreply header"),
        ("X-Autorespond", "Invoice INV-1001", "X-Autorespond header"),
        ("Precedence", "bulk", "Precedence: bulk"),
        ("Precedence", "junk", "Precedence: junk"),
        ("Precedence", "list", None),  # a person writing through a mailing list
        ("Precedence", "auto_reply", "Precedence: auto_reply"),
        ("Precedence", "first-class", None),
        ("X-Auto-Response-Suppress", "All", None),
        ("X-Auto-Response-Suppress", "OOF, AutoReply", None),
        ("Return-Path", "<>", "empty return path (sent by a mail system)"),
    ],
)
def test_automatic_headers(header: str, value: str, reason: str | None) -> None:
    assert parse(a_message({header: value})).automatic == reason


def test_a_list_message_is_automatic_only_when_a_machine_wrote_it() -> None:
    on_list = {"Precedence": "list", "List-Id": "<billing.groups.example>"}
    assert parse(a_message(on_list)).automatic is None
    submitted = {**on_list, "Auto-Submitted": "auto-generated"}
    assert parse(a_message(submitted)).automatic == "Auto-Submitted: auto-generated"
    away = {**on_list, "Subject": "Automatic reply: Invoice INV-1001"}
    assert parse(a_message(away)).automatic == "subject of an out-of-office reply"


def test_a_persons_reply_through_a_google_group_is_not_automatic() -> None:
    raw = corpus_file("mail", "jailhouse-dev-googlegroups-winmail.eml").read_bytes()
    assert b"Precedence: list" in raw and b"googlegroups.com" in raw
    reply = parse(raw)
    assert reply.automatic is None and reply.bounce is None
    assert reply.text


def test_a_human_outlook_reply_carrying_x_auto_response_suppress_is_not_automatic() -> None:
    assert b"X-Auto-Response-Suppress: All" in raw_sample("outlook_reply")
    assert sample("outlook_reply").automatic is None


def test_a_read_receipt_is_automatic() -> None:
    raw = (
        b"From: jane@northwind.example\r\nSubject: Read: Invoice\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n--b--\r\n"
    )
    reply = parse(raw)

    assert reply.automatic == "automatic report (disposition-notification)"
    assert reply.bounce is None


# --- delivery status notifications -------------------------------------------------------------


def test_a_hard_bounce_names_the_address_the_status_and_our_message() -> None:
    report = sample("dsn_bounce")

    assert report.automatic == "delivery status notification"
    assert report.bounce is not None
    assert report.bounce.action == "failed"
    assert report.bounce.failed_recipients == ("nobody@northwind.example",)
    assert report.bounce.status == "5.1.1"
    assert report.bounce.permanent is True
    assert report.bounce.diagnostic == (
        "550 5.1.1 <nobody@northwind.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert report.bounce.original_message_id == ORIGINAL
    assert "permanently" in report.bounce.summary


def test_a_delayed_notification_is_not_a_failure_and_says_so() -> None:
    report = sample("dsn_delayed")

    assert report.automatic == "delivery status notification"
    assert report.bounce is not None
    assert report.bounce.action == "delayed"
    assert report.bounce.permanent is False
    assert report.bounce.failed_recipients == ()
    assert report.bounce.recipients == ("ap@slow.example",)
    assert report.bounce.status == "4.4.1"
    assert report.bounce.original_message_id == ORIGINAL
    assert "not a failure" in report.bounce.summary


def test_the_original_message_id_is_read_from_an_attached_full_message_too() -> None:
    raw = raw_sample("dsn_bounce").replace(b"text/rfc822-headers", b"message/rfc822")
    report = parse(raw)

    assert report.bounce is not None
    assert report.bounce.original_message_id == ORIGINAL


def test_a_failure_after_retries_with_a_4xx_status_is_a_failure() -> None:
    """The mail system gave up: the 4.x.x code only says why it kept trying before that."""
    raw = raw_sample("dsn_delayed").replace(b"Action: delayed", b"Action: failed")
    report = parse(raw)

    assert report.bounce is not None
    assert report.bounce.failed_recipients == ("ap@slow.example",)
    assert report.bounce.status == "4.4.1"
    assert report.bounce.permanent is True


def test_a_status_missing_from_the_report_is_taken_from_the_diagnostic() -> None:
    raw = raw_sample("dsn_bounce").replace(b"Status: 5.1.1\n", b"")
    report = parse(raw)

    assert report.bounce is not None
    assert (report.bounce.status, report.bounce.permanent) == ("5.1.1", True)


def test_of_two_recipients_the_failed_one_is_reported() -> None:
    delivered = (
        b"Final-Recipient: rfc822; ok@northwind.example\nAction: delivered\nStatus: 2.0.0\n\n"
    )
    raw = raw_sample("dsn_bounce").replace(
        b"Final-Recipient: rfc822; nobody", delivered + b"Final-Recipient: rfc822; nobody"
    )
    report = parse(raw)

    assert report.bounce is not None
    assert report.bounce.recipients == ("ok@northwind.example", "nobody@northwind.example")
    assert report.bounce.failed_recipients == ("nobody@northwind.example",)
    assert report.bounce.permanent is True


# --- quoted history and signatures in plain text ------------------------------------------------

STRIPPED = [
    (
        "Paid.\n\nOn Mon, Mar 16, 2026 at 10:02 AM Acme <ar@example.com> wrote:\n> Please pay.",
        "Paid.",
    ),
    (
        "Paid.\nOn Mon, Mar 16, 2026 at 10:02 AM Acme Accounts Receivable <\n"
        "ar@example.com> wrote:\n\n> Please pay.",
        "Paid.",
    ),
    ("Paid.\n\n-----Original Message-----\nFrom: Acme\nPlease pay.", "Paid."),
    (
        "Bezahlt.\n\nVon: Acme <ar@example.com>\nGesendet: Montag, 16. März 2026 10:02\n"
        "An: Jürgen\nBetreff: Rechnung\n\nBitte zahlen.",
        "Bezahlt.",
    ),
    (
        "Pagado.\n\nEl lun, 16 mar 2026 a las 10:02, Acme (<ar@example.com>) escribió:\n> Pague.",
        "Pagado.",
    ),
    ("Paid.\n\nAm 16.03.2026 um 10:02 schrieb Acme:\n> Bitte zahlen.", "Paid."),
    # Bottom-posting and inline answers: only the marked quote goes.
    ("On Mar 16, 2026, at 10:02, Acme <ar@example.com> wrote:\n> Please pay.\n\nPaid.", "Paid."),
    (
        "> Can you pay by Friday?\nYes, Friday.\n> Which invoice?\nINV-1001.",
        "Yes, Friday.\nINV-1001.",
    ),
    ("Paid.\n\n-- \nJane Doe\nNorthwind", "Paid."),
    ("Paid.\n\nGet Outlook for iOS", "Paid."),
    ("Bezahlt.\n\nVon meinem iPhone gesendet", "Bezahlt."),
    ("Paid.\n\nKind regards,\nJane Doe\nAP Specialist\njane@northwind.example", "Paid."),
    ("Paid.\n\nMit freundlichen Grüßen\nJürgen Weiß", "Paid."),
]
KEPT = [
    "Thanks,\nJane\n\nP.S. We will pay the rest on Friday.",
    "Thanks for the reminder, we paid today.",
    "Thank you!",
    "Paid half.\n\nBest,\nJane\nWe will pay the rest on Friday",
    "On Monday I wrote:\nwe need a W-9 first.",
    "Please call me.\n\nThanks,\nJane\nCan you resend the invoice?",
    "From: the 1st of April we pay by card.\nTo: whoever reads this, thanks.",
]


@pytest.mark.parametrize(("written", "expected"), STRIPPED)
def test_quoted_history_and_signatures_are_removed(written: str, expected: str) -> None:
    assert strip_reply(written) == expected


@pytest.mark.parametrize("written", KEPT)
def test_the_customers_own_sentences_are_never_removed(written: str) -> None:
    assert strip_reply(written) == written


def test_format_flowed_lines_are_joined() -> None:
    raw = (
        b"From: jane@northwind.example\r\n"
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
        b"\r\nWe will pay INV-1001 \r\non Friday.\r\n\r\n> Please pay \r\n> today.\r\n"
    )
    reply = parse(raw)

    assert reply.text == "We will pay INV-1001 on Friday."
    assert "> Please pay today." in reply.full_text


# --- HTML --------------------------------------------------------------------------------------


def test_html_line_breaks_follow_the_blocks() -> None:
    html = "<div>One</div><div><br></div><div>Two<br>Three</div><p>Four</p><p>Five</p><ul><li>Six"
    assert html_to_text(html) == "One\n\nTwo\nThree\n\nFour\n\nFive\n\nSix"


def test_outlook_quote_markers_cut_everything_after_them() -> None:
    html = (
        '<div>Paid.</div><div id="x_appendonsend"></div><hr><div id="x_divRplyFwdMsg">'
        "<b>From:</b> Acme</div><div>Please pay.</div>"
    )
    assert html_to_text(html, drop_quotes=True) == "Paid."
    assert "Please pay." in html_to_text(html)


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n "])
def test_empty_input_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="empty email"):
        parse(raw)


def test_a_message_without_from_still_parses() -> None:
    reply = parse(b"Subject: hello\r\n\r\nWe paid.\r\n")

    assert (reply.sender, reply.sender_name, reply.text) == ("", None, "We paid.")


def test_garbage_still_parses() -> None:
    reply = parse(b"\x00\xff\xfe: :: \r\n\x01garbage\r\nnot a header\r\n\r\n\xff body")

    assert reply.sender == ""
    assert reply.bounce is None


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("x-unknown-charset", b"Bezahlt am Montag", "Bezahlt am Montag"),
        ("us-ascii", "Payé".encode(), "Payé"),  # mislabelled UTF-8
        ("utf-8", "Payé".encode("latin-1"), "Pay\ufffd"),  # mislabelled Latin-1
        ("idna", b"Pay\xff", "Pay\ufffd"),  # a codec that refuses error handlers
        ("base64", b"Paid", "Paid"),  # not a text encoding at all
    ],
)
def test_a_wrong_or_unknown_charset_does_not_crash(
    charset: str, body: bytes, expected: str
) -> None:
    raw = f"From: a@b.example\r\nContent-Type: text/plain; charset={charset}\r\n\r\n".encode()
    assert parse(raw + body).text == expected


def test_broken_base64_and_encoded_words_do_not_crash() -> None:
    raw = (
        b"From: =?x-unknown?Q?J=E9r=F4me?= <j@b.example>\r\nSubject: =?utf-8?B?!!!?=\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nUGFpZ$$$\r\n"
    )
    reply = parse(raw)

    assert reply.sender == "j@b.example"
    assert reply.sender_name is not None


def test_raw_eight_bit_headers_are_read_as_utf8() -> None:
    raw = "From: Jürgen Weiß <j@b.example>\r\nSubject: Überweisung\r\n\r\nok\r\n".encode()
    reply = parse(raw)

    assert (reply.sender_name, reply.subject) == ("Jürgen Weiß", "Überweisung")


def test_a_report_without_its_parts_is_still_a_bounce_with_nothing_known() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nbroken\r\n"
    )
    report = parse(raw)

    assert report.bounce is not None
    assert (report.bounce.permanent, report.bounce.failed_recipients) == (False, ())
    assert report.automatic == "delivery status notification"


def _message_like(headers: list[tuple[str, str]], body: bytes) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode("utf-8", "replace") for k, v in headers) + b"\r\n" + body


_HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Content-Type",
        "Content-Transfer-Encoding",
        "References",
        "In-Reply-To",
        "Auto-Submitted",
        "Delivered-To",
        "Message-ID",
        "Precedence",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, st.text(max_size=60)), max_size=8),
    body=st.binary(max_size=400),
)
def test_no_message_shaped_input_raises(headers: list[tuple[str, str]], body: bytes) -> None:
    raw = _message_like(headers, body)
    if raw.strip():
        assert isinstance(parse(raw), InboundEmail)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=1, max_size=600))
def test_no_bytes_raise(raw: bytes) -> None:
    if raw.strip():
        assert isinstance(parse(raw), InboundEmail)


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.eml")))
def test_every_sample_survives_being_cut_short(name: str) -> None:
    raw = raw_sample(name)
    for end in range(1, len(raw), max(1, len(raw) // 40)):
        if raw[:end].strip():
            parse(raw[:end])
