"""How many SMS segments a text takes, as carriers count them, and at most how many are sent.

A text written only in the GSM-7 alphabet holds 160 characters in one segment, 153 in each when
split (the two of the extension table, such as € and [, count twice). One character outside it
(an í, a curly apostrophe, a no-break space) sends the whole text in UCS-2: 70 characters, 67 in each when
split. The linter, the Edit form and the sender all count with `segments`."""

from __future__ import annotations

import unicodedata

MAX_SEGMENTS = 2
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€")
# What MAX_SEGMENTS segments hold in each encoding.
GSM7_MOST = 153 * MAX_SEGMENTS if MAX_SEGMENTS > 1 else 160
UCS2_MOST = 67 * MAX_SEGMENTS if MAX_SEGMENTS > 1 else 70


def outside_gsm7(text: str) -> list[str]:
    """The characters of `text` outside the GSM-7 alphabet, each once, in the order they come."""
    return list(dict.fromkeys(ch for ch in text if ch not in GSM7 and ch not in GSM7_EXTENDED))


def length(text: str) -> int:
    """The text's length as its encoding counts it: GSM-7 septets (an extension character is
    two), else UTF-16 code units."""
    if outside_gsm7(text):
        return len(text.encode("utf-16-le")) // 2
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)


def segments(text: str) -> int:
    """How many SMS segments the text takes (GSM-7: 160, or 153 each when split; UCS-2: 70/67)."""
    size = length(text)
    if outside_gsm7(text):
        return 1 if size <= 70 else -(-size // 67)
    return 1 if size <= 160 else -(-size // 153)


def segments_problem(text: str) -> str | None:
    """Why the text is not sent (it takes more than MAX_SEGMENTS segments), in words that say
    how long it is and which characters force the 67-character segments; None when it fits."""
    count = segments(text)
    if count <= MAX_SEGMENTS:
        return None
    wide = outside_gsm7(text)
    if not wide:
        return (
            f"takes {count} segments ({length(text)} characters); at most {MAX_SEGMENTS} are sent"
            f" ({GSM7_MOST} characters)"
        )
    shown = ", ".join(_shown(ch) for ch in wide[:3]) + (" and others" if len(wide) > 3 else "")
    verb = "is" if len(wide) == 1 else "are"
    return (
        f"takes {count} segments ({length(text)} characters; {shown} {verb} not in the GSM-7"
        f" alphabet, so each segment holds 67 characters); at most {MAX_SEGMENTS} are sent"
        f" ({UCS2_MOST} characters with {'it' if len(wide) == 1 else 'them'},"
        f" {GSM7_MOST} without)"
    )


def _shown(ch: str) -> str:
    name = unicodedata.name(ch, "")
    code = f"U+{ord(ch):04X}"
    return f"{ch!r} ({code})" if ch.isprintable() and not ch.isspace() else f"{code} {name}"
