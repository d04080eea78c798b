"""Quoted history is cut whatever language the mail client labelled it in: Outlook's header
block and Gmail's "… wrote:" line in the languages they are written in."""

from __future__ import annotations

import pytest

from integrations.email_text import strip_reply
from tests.support.quoted_replies import (
    ATTRIBUTIONS,
    OUTLOOK_FIELDS,
    gmail_quote,
    outlook_quote,
)

OWN = "We will pay Friday."
SENT = (
    "Hi Maria,\n\nOur records show invoice INV-1001 is still open. If the amount doesn't "
    "match, please let us know.\n\nMany thanks,\nThe accounts team"
)


@pytest.mark.parametrize("language", sorted(OUTLOOK_FIELDS))
def test_outlooks_header_block_is_cut_in_every_language(language: str) -> None:
    assert strip_reply(outlook_quote(OWN, OUTLOOK_FIELDS[language], SENT)) == OWN


@pytest.mark.parametrize("language", sorted(ATTRIBUTIONS))
def test_a_wrote_line_in_another_language_goes_with_the_quote(language: str) -> None:
    assert strip_reply(gmail_quote(OWN, ATTRIBUTIONS[language], SENT)) == OWN


@pytest.mark.parametrize("language", sorted(ATTRIBUTIONS))
def test_a_wrote_line_above_unprefixed_history_cuts_it(language: str) -> None:
    assert strip_reply(f"{OWN}\n\n{ATTRIBUTIONS[language]}\n{SENT}") == OWN


def test_a_customers_own_lines_with_colons_stay() -> None:
    text = "Note: we will pay Friday.\nAmount: 1,200.00\n\nThanks"
    assert strip_reply(text) == "Note: we will pay Friday.\nAmount: 1,200.00"
