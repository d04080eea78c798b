"""Phrases no automated message may carry, and what every message must carry.

Applies to every step that is not human-only. A person may write such words in an escalation; a
machine never sends them (threats and false statements: 15 USC 1692e; Reg F opt-out notice).
"""

from __future__ import annotations

import re

from playbooks.render import SMS_LIMIT, Rendered

FORBIDDEN: tuple[tuple[str, str], ...] = (
    (r"\blegal\s+(action|proceedings|steps|remedies)\b", "legal action"),
    (r"\blaw\s*suits?\b|\bsue\b|\bsued\b|\bcourts?\b", "lawsuits and courts"),
    (r"\blawyers?\b|\battorneys?\b|\bsolicitors?\b", "lawyers and attorneys"),
    (r"\bcollections?\s+(agency|agencies|firm)\b|\bdebt\s+collectors?\b", "collection agencies"),
    (r"\bcredit\s+(report\w*|bureaus?|score|rating|reference)\b", "credit reporting"),
    (
        r"\bsuspen(d|ded|sion)\b|\bcut\s+off\b|\bdisconnect\w*\b|\bterminat\w+\s+(your\s+)?service",
        "suspension of service",
    ),
    (r"\bgarnish\w*\b|\barrest\w*\b|\bseiz\w+\b|\bbailiffs?\b", "garnishment, arrest, seizure"),
    (
        r"\bfinal\s+(notice|warning|demand)\b|\bor\s+else\b|\bfailure\s+to\s+pay\b|\bforced\s+to\b"
        r"|\bconsequences\b|\blast\s+chance\b",
        "threats",
    ),
    (r"\blate\s+fees?\b|\bpenalt(y|ies)\b|\binterest\s+charges?\b", "fees or penalties"),
    (
        r"\bdiscount\w*\b|\bspecial\s+offer\b|\bpromo\w*\b|\d+\s*%\s*off\b|\bupgrade\b",
        "promotional content",
    ),
)
_FORBIDDEN = tuple((re.compile(pattern, re.IGNORECASE), label) for pattern, label in FORBIDDEN)
# Words at least one of which every forbidden phrase contains: a text with none of them (nearly
# every message) skips the patterns altogether (a plan lints thousands of messages).
_WORDS = frozenset(
    [
        "legal",
        "law",
        "lawsuit",
        "lawsuits",
        "sue",
        "sued",
        "court",
        "courts",
        "lawyer",
        "lawyers",
        "attorney",
        "attorneys",
        "solicitor",
        "solicitors",
        "collection",
        "collections",
        "debt",
        "credit",
        "cut",
        "final",
        "else",
        "failure",
        "forced",
        "consequences",
        "chance",
        "late",
        "penalty",
        "penalties",
        "interest",
        "special",
        "off",
        "upgrade",
        "bailiff",
        "bailiffs",
    ]
)
_PREFIXES = ("suspen", "disconnect", "terminat", "garnish", "arrest", "seiz", "discount", "promo")
# The words of a text are its runs of a-z once lowercased: every other byte becomes a space.
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_WORD_BYTES = frozenset(word.encode() for word in _WORDS)
_PREFIX_BYTES = re.compile(b" (?:" + b"|".join(p.encode() for p in _PREFIXES) + b")")
_OPT_OUT = r"unsubscribe|opt\s*out|stop\s+(receiving|these|sending|emailing)"
_EMAIL_OPT_OUT = re.compile(_OPT_OUT, re.I)
# Searched in the lowercased text first (several times faster); what it finds the pattern above
# finds too, and only a text where it finds nothing is searched again with the pattern above.
_EMAIL_OPT_OUT_LOWERCASE = re.compile(_OPT_OUT)
_SMS_OPT_OUT = re.compile(r"\breply\s+stop\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def _may_hold_forbidden(text: str, lowercase: str | None = None) -> bool:
    """Whether some run of a-z in the lowercased text is one of _WORDS or starts with one of
    _PREFIXES (non-ASCII characters become '?', which is no letter)."""
    lowered = text.lower() if lowercase is None else lowercase
    letters = b" " + lowered.encode("ascii", "replace").translate(_LETTERS_ONLY)
    return bool(_WORD_BYTES.intersection(letters.split()) or _PREFIX_BYTES.search(letters))


def _has_email_opt_out(text: str, lowercase: str) -> bool:
    return bool(_EMAIL_OPT_OUT_LOWERCASE.search(lowercase) or _EMAIL_OPT_OUT.search(text))


def forbidden_phrases(text: str, lowercase: str | None = None) -> list[str]:
    """Which kinds of forbidden phrase the text carries, each with the words found
    (`lowercase`: the text lowercased, when the caller has it already)."""
    if not _may_hold_forbidden(text, lowercase):
        return []
    found = []
    for pattern, label in _FORBIDDEN:
        match = pattern.search(text)
        if match:
            found.append(f"{label} ({match.group(0)!r})")
    return found


def lint_message(message: Rendered) -> list[str]:
    """Problems with one rendered message of an automated step (empty when it is fine)."""
    problems = []
    parts = {
        "subject": message.subject,
        "text body": message.text,
        "HTML body": _TAGS.sub(" ", message.html),
        "SMS": message.sms,
    }
    lowered = {part: text.lower() for part, text in parts.items()}
    for part, text in parts.items():
        for phrase in forbidden_phrases(text, lowered[part]):
            problems.append(f"{part}: no automated message may mention {phrase}")
    if not _has_email_opt_out(message.text, lowered["text body"]):
        problems.append("text body: has no opt-out line (e.g. how to stop these emails)")
    if not _has_email_opt_out(parts["HTML body"], lowered["HTML body"]):
        problems.append("HTML body: has no opt-out line (e.g. how to stop these emails)")
    if not _SMS_OPT_OUT.search(message.sms):
        problems.append("SMS: has no 'Reply STOP' opt-out")
    if len(message.sms) > SMS_LIMIT:
        problems.append(f"SMS: {len(message.sms)} characters; at most {SMS_LIMIT} with the link")
    if not message.subject:
        problems.append("subject: is empty")
    return problems
