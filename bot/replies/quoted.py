"""A reply with our own reminder quoted in it, cut where the quote starts, whatever language the
customer's mail client wrote its header block in.

The reply is matched to the reminder it answers (its token, In-Reply-To or References name the
Message-ID we sent), so we know the text we sent. Where a run of that text's words begins at the
start of a line of the reply, the quote begins: "> " prefixes, punctuation, case and re-wrapping
do not matter, because words are compared, not lines. The header block just above it ("De :",
"Von:", "差出人:", a Russian "… написал:" line, a rule) goes with it. Then nothing the reminder said
can be read as the customer's words: not its "doesn't match" as a dispute, nor its due date as
the date of a promise.
"""

from __future__ import annotations

import re

# How many of our words in a row, from the start of a line, mark the quote (all of ours, when we
# sent fewer). Short enough for a two-line reminder, long enough that a customer repeating one
# phrase of ours is not taken for a quote.
RUN_WORDS = 10
FEWEST_WORDS = 4
HEADER_LINES = 12  # the longest header block looked for above the quote

_WORD = re.compile(r"\w+")
# "Label: value" as a header block writes it, in any language ("De :", "Enviado el:", "件名:").
_HEADER_FIELD = re.compile(r"^\s*\*?[^\W\d_][^\W\d_ .'-]*(?:[ .'-][^\W\d_]+){0,2}\s*\*?[:\uff1a]")
_RULE = re.compile(r"^\s*(?:[-_=*]{5,}|-{2,}.*-{2,})\s*$")
# An attribution line: ends with a colon and names a date or an address.
_ATTRIBUTION = re.compile(r"^.{0,300}[\d@].{0,300}[:\uff1a]\s*$")


def without_our_words(text: str, sent: str | None) -> str:
    """`text` cut where it starts quoting `sent` (with the header block above the quote);
    unchanged when it does not quote it."""
    ours = _words(sent or "")
    if len(ours) < FEWEST_WORDS:
        return text
    run = min(RUN_WORDS, len(ours))
    runs = {tuple(ours[i : i + run]) for i in range(len(ours) - run + 1)}
    lines = text.split("\n")
    words: list[str] = []
    starts: list[tuple[int, int]] = []  # (line index, where its words begin in `words`)
    for index, line in enumerate(lines):
        found = _words(line)
        if found:
            starts.append((index, len(words)))
            words.extend(found)
    for index, at in starts:
        if tuple(words[at : at + run]) in runs:
            return "\n".join(lines[: _header_start(lines, index)]).strip()
    return text


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _header_start(lines: list[str], quote: int) -> int:
    """Where the header block above line `quote` begins (`quote` itself when there is none):
    blank lines, then header fields or an attribution with no blank line between them, then a
    rule drawn above them."""
    at = quote
    while at > 0 and not lines[at - 1].strip():
        at -= 1
    top, attributed = at, False
    while top > 0 and quote - top < HEADER_LINES:
        line = lines[top - 1].lstrip("> ")
        if not (_HEADER_FIELD.match(line) or _ATTRIBUTION.match(line)):
            break
        attributed = attributed or bool(_ATTRIBUTION.match(line))
        top -= 1
    # One "Label: value" line alone is the customer's ("Note: we pay Friday"), not a header block.
    if at - top < (1 if attributed else 2):
        return quote
    rule = top
    while rule > 0 and not lines[rule - 1].strip():
        rule -= 1
    return rule - 1 if rule > 0 and _RULE.match(lines[rule - 1]) else top
