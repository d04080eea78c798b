"""The linter's shortcuts decide exactly as the rules they stand for: the screen that skips the
forbidden-phrase patterns (a text whose runs of a-z, lowercased, hold no word and no prefix of a
forbidden phrase) and the search for an opt-out line in the lowercased text first, whatever the
text: accented letters, other scripts, letters whose lowercase is ASCII (the Kelvin sign) and
letters only a case-insensitive pattern folds to ASCII (the long s)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playbooks import lint

_RUNS = re.compile(r"[a-z]+")
# Kelvin, long s, dotted I, dotless i, combining dot, sharp s, é, Σ
TRICKY = "\u212a\u017f\u0130\u0131\u0307\u00df\u00e9\u03a3 \n\t"
TEXT = st.lists(
    st.one_of(
        st.sampled_from(sorted(lint._WORDS) + list(lint._PREFIXES) + ["unsubscribe", "opt out"]),
        st.text(max_size=3),
        st.sampled_from(TRICKY),
    ),
    max_size=40,
).map("".join)


def screen_by_rule(text: str) -> bool:
    """Runs of a-z in the lowercased text, or in it with dotless i, long s and a dotted capital
    I (lowercased: i and a combining dot) read as the letters IGNORECASE patterns take them for."""
    lowered = text.lower()
    folded = lowered.replace("\u0131", "i").replace("\u017f", "s").replace("i\u0307", "i")
    words = set(_RUNS.findall(lowered)) | set(_RUNS.findall(folded))
    return bool(words & lint._WORDS) or any(w.startswith(lint._PREFIXES) for w in words)


@given(TEXT)
def test_the_screen_passes_exactly_the_texts_the_rule_passes(text: str) -> None:
    assert lint._may_hold_forbidden(text) == screen_by_rule(text)


@given(TEXT)
def test_an_opt_out_line_is_found_exactly_where_the_pattern_finds_one(text: str) -> None:
    assert lint._has_email_opt_out(text, text.lower()) == bool(lint._EMAIL_OPT_OUT.search(text))


@pytest.mark.parametrize(
    "text",
    ["UN\u017fUBSCRIBE here", "Stop \u017fending these", "\u212aeep calm, opt\tout", "Law\u0130"],
)
def test_letters_that_fold_to_ascii_are_judged_as_the_rules_judge_them(text: str) -> None:
    assert lint._has_email_opt_out(text, text.lower()) == bool(lint._EMAIL_OPT_OUT.search(text))
    assert lint._may_hold_forbidden(text) == screen_by_rule(text)
