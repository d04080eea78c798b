"""The linter reads an email's bodies line by line, remembering the lines it has judged (most are
the template's own, the same in thousands of messages), and makes the HTML body's shown text only
when it reads it whole: its verdicts are exactly those of reading each body whole, whatever the
text. Checked against the linter as it was, written out here, over generated bodies (tags and
comments that span lines, entities that decode to line breaks, forbidden words and opt-out lines
split across lines, letters whose case folds to ASCII) and over the bundled templates rendered for
hostile names and values, each message linted three times (its lines new, seen once, remembered)."""

from __future__ import annotations

import html
from collections.abc import Collection, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.planning.messages import MessageInvoice, Sender, message_context
from playbooks import lint
from playbooks.loader import load_bundle
from playbooks.render import Rendered, Renderer
from playbooks.sms import segments_problem

LANGUAGES = [None, "en", "en-GB", "fr", "fr-CA", "de", "es", "pt"]


def shown_text_before(html_body: str) -> str:
    text = lint._TAGS.sub(" ", lint._INLINE_TAGS.sub("", html_body))
    return lint._plain_spaces(html.unescape(text).translate(lint._INVISIBLE))


def lint_message_before(
    message: Rendered, language: str | None = None, values: Collection[str] = ()
) -> list[str]:
    """`lint_message` as it was, each part read whole."""
    languages = lint._languages(language)
    problems = []
    parts = {
        "subject": message.subject,
        "text body": message.text,
        "HTML body": shown_text_before(message.html),
        "SMS": message.sms,
    }
    lowered = {part: text.lower() for part, text in parts.items()}
    for part, text in parts.items():
        phrases = lint.forbidden_phrases(text, lowered[part], language)
        if phrases and values:
            phrases = lint.forbidden_phrases(lint.without_values(text, values), None, language)
        for phrase in phrases:
            problems.append(f"{part}: no automated message may mention {phrase}")
    if not lint._has_email_opt_out(message.text, lowered["text body"], languages):
        problems.append("text body: has no opt-out line (e.g. how to stop these emails)")
    if not lint._has_email_opt_out(parts["HTML body"], lowered["HTML body"], languages):
        problems.append("HTML body: has no opt-out line (e.g. how to stop these emails)")
    if not lint._has_sms_opt_out(message.sms, languages):
        problems.append("SMS: has no 'Reply STOP' opt-out")
    too_long = segments_problem(message.sms)
    if too_long:
        problems.append(f"SMS: {too_long}")
    if not message.subject:
        problems.append("subject: is empty")
    return problems


def assert_linted_as_before(
    message: Rendered, language: str | None, values: Collection[str] = ()
) -> None:
    expected = lint_message_before(message, language, values)
    for _ in range(3):  # lines new, then seen once (remembered), then known
        assert lint.lint_message(message, language, values) == expected
    assert lint.shown_text(message.html) == shown_text_before(message.html)


PIECES = [
    *sorted(lint._WORDS)[:12],
    "legal action",
    "legal\naction",
    "Legal&nbsp;Action",
    "le<span>gal</span> action",
    "le&shy;gal",
    "sue",
    "\u017fue",  # a long s: the case-insensitive patterns fold it to s
    "\u212aeep",
    "\u0130",
    "\u03a3",
    "discounts",
    "20 % off",
    "cut\noff",
    "unsubscribe",
    "UN\u017fUBSCRIBE",
    "opt out",
    "opt\nout",
    "opt<b>\n</b>out",
    "stop receiving these",
    "stop\n\nreceiving",
    "Reply STOP",
    "darse de baja",
    "nicht mehr\nerhalten",
    "d\u00e9sabonner",
    "poursuites",
    "inkasso",
    "<p>",
    "</p>",
    "<br>",
    "<b",
    ">",
    "<",
    "<span\n>",
    '<td style="x">',
    "<a href='x'>",
    "</a>",
    "<!--",
    "-->",
    "<!-- legal -->",
    "&amp;",
    "&lt;",
    "&gt;",
    "&#10;",
    "&#60;",
    "&lt;b&gt;",
    "&",
    "\x00",
    "\u00a0",
    "\u200b",
    " ",
    "\n",
    "\n\x00\n",
    "$1,250.00",
    "INV-1042",
]
BODY = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=30).map("".join)
# bodies whose lines come back: the same few lines in other orders and mixes
LINES = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)
REPEATING = st.lists(LINES, min_size=1, max_size=4).flatmap(
    lambda lines: st.lists(st.sampled_from(lines), max_size=12).map("\n".join)
)
VALUES = st.lists(st.sampled_from(["Sue Park", "Sue", "Discount Tire Co", "legal", "x"]))


@pytest.mark.slow  # a differential sweep of hundreds of generated messages
@settings(max_examples=600)
@given(
    st.one_of(BODY, REPEATING),
    st.one_of(BODY, REPEATING),
    st.one_of(BODY, st.sampled_from(PIECES)),
    st.one_of(st.just(""), BODY),
    st.sampled_from(LANGUAGES),
    VALUES,
)
def test_every_verdict_is_the_one_reading_each_body_whole_gives(
    text: str, html_body: str, subject: str, sms: str, language: str | None, values: list[str]
) -> None:
    assert_linted_as_before(Rendered(subject, text, html_body, sms), language, values)


@pytest.mark.slow  # a differential sweep of hundreds of generated messages
@settings(max_examples=200)
@given(st.lists(st.tuples(REPEATING, REPEATING), min_size=1, max_size=8))
def test_lines_remembered_from_other_messages_change_no_verdict(
    bodies: list[tuple[str, str]],
) -> None:
    for text, html_body in bodies:
        assert_linted_as_before(Rendered("Hello", text, html_body, ""), "en")


def test_when_the_lines_kept_are_forgotten_no_verdict_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lint._Lines, "KEPT", 3)
    for one in PIECES:
        for other in ("unsubscribe", "<p>legal</p>", "x\ny"):
            body = f"{one}\n{other}\n{one}"
            assert_linted_as_before(Rendered("Hi", body, body, ""), None)


NAMES = st.one_of(
    st.sampled_from(
        [
            "Sue Park",
            "Discount Tire Co",
            "Legal Action Partners",
            "Promo <b>Print</b> & Sons",
            "Opt\nOut Ltd",
            "Cut\u00a0Off Inc",
            "Zo\u00eb \u017fue",
            "Juez Ruiz",
            "Inkasso GmbH",
            "O'Brien & <Co>",
        ]
    ),
    st.text(min_size=1, max_size=12),
)


def bundled_templates() -> Iterator[tuple[str, str | None]]:
    renderer = Renderer(load_bundle().templates)
    for template in sorted({key.split("/", 1)[0] for key in load_bundle().templates}):
        yield template, None
        for language in sorted(renderer.languages(template)):
            yield template, language


TEMPLATES = list(bundled_templates())


@pytest.mark.slow  # a differential sweep of hundreds of generated messages
@settings(max_examples=300)
@given(
    st.sampled_from(TEMPLATES),
    NAMES,
    NAMES,
    st.lists(
        st.tuples(st.sampled_from(["INV-1", "legal-2", "A\nB", "X&Y"]), st.integers(1, 9)),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([None, "https://pay.example/x", "https://pay.example/stop-receiving-these"]),
)
def test_the_bundled_templates_for_hostile_names_are_linted_as_before(
    variant: tuple[str, str | None],
    customer: str,
    contact: str,
    invoices: list[tuple[str, int]],
    link: str | None,
) -> None:
    template, language = variant
    context = message_context(
        customer_name=customer,
        customer_id="C-1",
        contact_name=contact,
        invoices=[
            MessageInvoice(
                number,
                date(2026, 2, day),
                date(2026, 3, day),
                "USD",
                Decimal(day * 100),
                Decimal(day * 50),
            )
            for number, day in invoices
        ],
        day=date(2026, 3, 20),
        sender=Sender("Accounts Receivable", "ar@example.com"),
        payment_link=link,
        language=language,
    )
    renderer = Renderer(load_bundle().templates)
    message = renderer.render(template, context, None, language)
    assert_linted_as_before(message, language or "en", lint.ledger_values(context))


# Lines remembered before the bodies below are linted.
KNOWN = ["Thanks for your business.", "<span", "<p>Hello</p>"]
HOSTILE = [
    "<!-- a > b\nunsubscribe\n-->\n<p>Hello</p>",  # a comment across lines hides the opt-out
    "out opt\nThanks for your business.\nout, opt",  # lines new to it, kept apart when read
    "out opt\nThanks for your business.\nout, opt\nout; opt",
    "<<b>\nunsubscribe>\nThanks for your business.",  # a "<" left open once inline tags go
    "<span\nunsubscribe>",  # a remembered line that leaves a tag open to the next one
    "Thanks for your business.\n<span",
    "<p>\nle<span>gal</span> action</p>\nThanks for your business.",
    "<p>Hello</p>\nopt\nout",
    "<p>Hello</p>\n&#10;unsubscribe&#10;",
    "UN\u017fUBSCRIBE\nThanks for your business.",
    "stop\nreceiving these\n<p>Hello</p>",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_bodies_whose_tags_comments_and_phrases_span_lines_are_read_as_before(body: str) -> None:
    for line in KNOWN:
        for _ in range(2):
            lint.lint_message(Rendered("Hi", line, line, ""), "en")
    assert_linted_as_before(Rendered("Hi", body, body, ""), "en")
    assert_linted_as_before(Rendered("Hi", body, body, ""), None)


def test_a_line_remembered_by_another_thread_meanwhile_is_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lines' verdicts are shared by every thread of the process (a plan drafting in the
    scheduler while a person's edit is linted in Slack's workers): a line one thread finds new
    and another remembers before the first judges it is still part of the first's body."""
    threat = "We will take legal action on Monday."
    text = f"Dear customer,\n{threat}\nTo stop these emails, reply unsubscribe."

    class RememberedMeanwhile(dict[str, tuple[bool, bool, bool]]):
        """The lines remembered, and another thread remembering the threat's line just after
        this body's lines were looked up."""

        def get(self, line: str, default: Any = None) -> Any:
            found = super().get(line, default)
            if line == text.rsplit("\n", 1)[-1]:  # the body's last line: all were looked up
                self[threat] = lint._judge_text(threat, True)
            return found

    lines = lint._Lines(lint._judge_text)
    lines.known = RememberedMeanwhile()
    monkeypatch.setattr(lint, "_TEXT_LINES", lines)
    problems = lint.lint_message(Rendered("Invoice", text, "", ""), "en")
    assert any(p.startswith("text body: no automated message may mention") for p in problems)
