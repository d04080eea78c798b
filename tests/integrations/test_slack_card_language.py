"""A reminder card says the message's language when it is not English, so an approver knows."""

from __future__ import annotations

from integrations.slack_blocks import reminder_blocks
from tests.integrations.test_slack_blocks import card, check_limits


def _fields(language: str | None) -> list[str]:
    blocks = reminder_blocks(card(1, language=language))
    check_limits(blocks)
    return [field["text"] for field in blocks[0]["fields"]]


def test_a_card_names_the_language_of_a_message_not_in_english() -> None:
    assert "*Language*\nSpanish" in _fields("es")
    assert "*Language*\nFrench (Canada)" in _fields("fr-CA")


def test_an_english_card_has_no_language_fact() -> None:
    for language in (None, "en", "en-GB"):
        assert not any(text.startswith("*Language*") for text in _fields(language))
