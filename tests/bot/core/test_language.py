"""Language tags: normalised, known to Babel, and named for people."""

from __future__ import annotations

import pytest

from bot.core.language import formatting_locale, is_english, language_name, parse_language


@pytest.mark.parametrize(
    ("given", "stored"),
    [("es", "es"), ("ES", "es"), (" fr-ca ", "fr-CA"), ("pt_BR", "pt-BR"), ("zh-hant", "zh-Hant")],
)
def test_a_language_tag_is_stored_in_one_spelling(given: str, stored: str) -> None:
    assert parse_language(given) == stored


@pytest.mark.parametrize("given", ["Spanish", "xx", "en-XX", "e", "es-", ""])
def test_an_unknown_or_misspelt_tag_says_what_to_write(given: str) -> None:
    with pytest.raises(ValueError, match="such as es, fr, de or fr-CA"):
        parse_language(given)


def test_names_and_formats_follow_the_tag() -> None:
    assert language_name("es") == "Spanish"
    assert language_name("fr-CA") == "French (Canada)"
    assert is_english(None) and is_english("en-GB") and not is_english("de")
    assert formatting_locale(None) == "en_US"
    assert formatting_locale("fr-CA") == "fr_CA"
