"""An `/ar` command's text split into words the way people type them: a quoted phrase is one
word, whether typed in straight quotes ("Smith & Sons", 'Smith & Sons') or in the curly ones
phones and Macs put in, and an apostrophe inside a word is part of it (O'Brien's). A quote counts as quoting only at the edges of words: it opens a phrase at the start
of a word and closes it at the end of one; any other quote is kept as typed."""

from __future__ import annotations

import re

_DOUBLE = '"\u201c\u201d\u201e'  # straight, left, right, low double quotes
_SINGLE = "'\u2018\u2019\u201a"  # straight, left, right, low single quotes
_WORD = re.compile(
    rf"""(?:[{_DOUBLE}](?P<double>.*?)[{_DOUBLE}]|[{_SINGLE}](?P<single>.*?)[{_SINGLE}])(?=\s|$)"""
    r"|(?P<bare>\S+)",
    re.DOTALL,
)


def words_of(text: str) -> list[str]:
    """The words of `text`, a quoted phrase as one word without its quotes."""
    words = []
    for found in _WORD.finditer(text):
        for group in ("double", "single", "bare"):
            if found.group(group) is not None:
                words.append(found.group(group))
                break
    return words


def phrase_of(text: str) -> str:
    """`text` as one name, as typed (apostrophes and quotes inside it kept, spaces between
    words made single), or the phrase inside the quotes when the whole of it is quoted."""
    words = words_of(text)
    if len(words) == 1:
        return words[0]
    return " ".join(text.split())
