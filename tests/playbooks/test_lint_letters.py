"""The linter's quick screens read a text as its IGNORECASE patterns do: the four characters
outside a-z that such a pattern takes for a-z letters (dotless i, long s, dotted capital I, the
Kelvin sign) cannot hide a forbidden word from the screen that decides whether to search."""

from __future__ import annotations

import re
import sys

import pytest

from playbooks.lint import _FORBIDDEN, _PREFIXES, _WORDS, LANGUAGES, _rules, forbidden_phrases

SAME_LETTERS = [("\u0131", "i"), ("\u0130", "i"), ("\u017f", "s"), ("\u212a", "k")]


def test_these_are_the_only_characters_the_patterns_take_for_a_to_z() -> None:
    any_letter = re.compile("[a-z]", re.IGNORECASE)
    taken = {
        (chr(point), letter)
        for point in range(128, sys.maxunicode + 1)
        if any_letter.fullmatch(chr(point))
        for letter in "abcdefghijklmnopqrstuvwxyz"
        if re.fullmatch(letter, chr(point), re.IGNORECASE)
    }
    assert taken == set(SAME_LETTERS)


def spellings(word: str) -> list[str]:
    """`word` with each letter the patterns take another character for written as that one."""
    return [word.replace(letter, other) for other, letter in SAME_LETTERS if letter in word]


def searched(text: str) -> list[str]:
    """What every English pattern finds, without any screen."""
    return [
        f"{label} ({m.group(0)!r})" for pattern, label in _FORBIDDEN if (m := pattern.search(text))
    ]


@pytest.mark.parametrize("word", sorted(_WORDS) + list(_PREFIXES))
def test_an_english_forbidden_word_written_with_them_is_found_as_the_patterns_find_it(
    word: str,
) -> None:
    for spelled in [*spellings(word), word.upper().replace("I", "\u0130")]:
        text = f"Dear customer, we {spelled} you now."
        assert forbidden_phrases(text, language="en") == searched(text), spelled


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_languages_forbidden_stem_written_with_them_is_found_as_its_pattern_finds_it(
    language: str,
) -> None:
    for pattern, label, stems in _rules(language).forbidden:
        for stem in stems:
            for spelled in spellings(stem):
                text = f"x {spelled} x"
                if pattern.search(text):
                    assert any(p.startswith(label) for p in forbidden_phrases(text, None, language))
