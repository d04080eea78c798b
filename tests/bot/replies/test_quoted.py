"""The reminder we sent, quoted in a reply, is cut by its own words: whatever the mail client's
language, prefixes or line wrapping."""

from __future__ import annotations

from bot.replies.quoted import without_our_words
from tests.support.quoted_replies import UNKNOWN_FIELDS, gmail_quote, outlook_quote

OWN = "We will pay Friday."
SENT = (
    "Hi Maria,\n\nOur records show that invoice INV-1001 for $1,200.00, due March 9, 2026, is "
    "still open. If an amount doesn't match or something isn't right, please let us know.\n\n"
    "Many thanks,\nThe accounts team"
)


def test_a_header_block_in_a_language_we_do_not_know_goes_with_our_quoted_text() -> None:
    reply = outlook_quote(OWN, UNKNOWN_FIELDS, SENT, wrap=60)
    assert without_our_words(reply, SENT) == OWN


def test_our_text_re_wrapped_and_prefixed_is_still_ours() -> None:
    reply = gmail_quote(OWN, "Dydd Llun, 16 Maw 2026 am 09:00, ysgrifennodd AR:", SENT, wrap=40)
    assert without_our_words(reply, SENT) == OWN


def test_our_text_with_no_header_block_is_cut_where_it_starts() -> None:
    assert without_our_words(f"{OWN}\n\n{SENT}", SENT) == OWN


def test_a_customer_repeating_a_few_of_our_words_keeps_their_reply() -> None:
    reply = "You wrote that INV-1001 is still open.\nIt is not: we paid it on March 2."
    assert without_our_words(reply, SENT) == reply


def test_a_reply_quoting_nothing_of_ours_is_unchanged() -> None:
    assert without_our_words(OWN, SENT) == OWN
    assert without_our_words(OWN, None) == OWN


def test_a_customers_own_label_line_above_the_quote_stays() -> None:
    reply = f"Note: we will pay Friday.\n\n{SENT}"
    assert without_our_words(reply, SENT) == "Note: we will pay Friday."
