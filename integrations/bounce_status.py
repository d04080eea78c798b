"""What a delivery report means for us: the message failed, is only delayed, or was refused for
something on our side (the sending domain's SPF/DKIM/DMARC, a banned attachment, our server on a
block list), whatever address it was sent to.

A report that says the mail system gave up (`Action: failed`, "expired", "could not be delivered",
"retry time exceeded") is a failure whatever its status code: a 4.x.x code there only says why the
mail system kept trying before it stopped. A delay is a report that says it is still trying and
nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAILED = "failed"
DELAYED = "delayed"
UNKNOWN = "unknown"  # says neither: nothing is changed on its word

# An enhanced status code (RFC 3463), e.g. 5.1.1; an SMTP reply code at the start of a line or
# after "said:"/"SMTP error", e.g. 550.
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?:^|[\s(:'\"=])([45])\d\d(?=[\s\-:])", re.MULTILINE)

_GAVE_UP = re.compile(
    r"\bexpired\b|\bgave up\b|\bgiving up\b|\bretry (?:time|timeout) (?:was )?exceeded\b"
    r"|\btoo long\b|\bcould not be delivered\b|\bcouldn't be delivered\b|\bnot been delivered\b"
    r"|\bwas not delivered\b|\bwasn't delivered\b|\bundeliverable\b|\bdelivery (?:has )?failed\b"
    r"|\bpermanent(?:ly)? (?:error|failure|fatal)|\bfatal error\b|\bfailed permanently\b"
    r"|\bunable to deliver\b|\bcannot be delivered\b|\bdelivery to the following recipients? failed"
    r"|\bnon-?delivery\b|\brejected\b|\bdoes not exist\b|\buser unknown\b|\bno such user\b",
    re.IGNORECASE,
)
_STILL_TRYING = re.compile(
    r"\bdelayed\b|\bdelay(?:ed)? (?:notification|notice)\b|\bwill (?:continue|keep) (?:to )?try"
    r"|\bstill (?:be )?trying\b|\bwill (?:be )?retr(?:y|ied)\b|\bwill try again\b"
    r"|\bhas not yet been delivered\b|\bnot yet been delivered\b|\bwarning: message\b"
    r"|\bdelivery is delayed\b|\bdeferred\b|\bno action is required on your part\b",
    re.IGNORECASE,
)
# Refused for what the sender sent or where from, not for the address it went to.
_SENDER_SIDE = re.compile(
    r"\bdmarc\b|\bspf\b(?:.{0,40}\b(?:fail|softfail|check|policy|record|not|reject))"
    r"|\bdkim\b(?:.{0,40}\b(?:fail|invalid|signature|required|missing|policy))"
    r"|\bunauthenticated (?:e-?mail|message|sender)\b|\bsender (?:is )?not authenticated\b"
    r"|\b(?:banned|blocked|prohibited|forbidden|disallowed|unacceptable|not (?:allowed|permitted))"
    r"\b.{0,30}\b(?:attachment|file ?(?:type|name|extension)|file|extension|content)s?\b"
    r"|\battachments? (?:type |of this type )?(?:is |are )?(?:not allowed|not permitted|banned|blocked)"
    r"|\bbanned (?:file|name|content)|\bcontains? (?:a )?(?:virus|malware)\b|\bvirus\b.{0,20}\bfound\b"
    r"|\b(?:spamhaus|spamcop|barracudacentral|sorbs|blocklist|blacklist|block list|black list)\b"
    r"|\bblocked using\b|\blisted (?:at|on|in) \S+\b|\bpoor reputation\b|\breputation\b.{0,20}\bblock",
    re.IGNORECASE | re.DOTALL,
)
_SENDER_SIDE_CODES = frozenset({"5.7.23", "5.7.24", "5.7.25", "5.7.26", "5.7.27", "4.7.26"})


@dataclass(frozen=True)
class Verdict:
    outcome: str  # FAILED, DELAYED or UNKNOWN
    status: str | None  # the enhanced status code the report gives, else one read from its text
    sender_side: bool  # refused for our sending domain or what we sent, not for the address


def status_in(*texts: str | None) -> str | None:
    """The first enhanced status code (RFC 3463) in the texts, with a 5 before a 4."""
    found = [m.group() for text in texts if text for m in _STATUS.finditer(text)]
    specific = [code for code in found if not code.endswith(".0.0")]
    for candidates in (specific, found):
        for klass in ("5", "4"):
            code = next((c for c in candidates if c.startswith(klass)), None)
            if code:
                return code
    return None


def judge(
    action: str | None, status: str | None, diagnostic: str | None, text: str = ""
) -> Verdict:
    """What a report about one recipient means. `action` and `status` come from its status block
    (RFC 3464) when it has one; `diagnostic` is the remote server's answer; `text` the report's
    words for a person (the only thing a report without a status block has)."""
    action = (action or "").strip().lower() or None
    code = status_in(status)
    if code is None or code.endswith(".0.0"):
        code = status_in(diagnostic, text) or code
    evidence = f"{diagnostic or ''}\n{text}"
    sender_side = (
        code in _SENDER_SIDE_CODES
        or bool(_SENDER_SIDE.search(diagnostic or ""))
        or (not diagnostic and bool(_SENDER_SIDE.search(text)))
    )
    if action in ("failed", "expired") or (action and action.startswith("fail")):
        return Verdict(FAILED, code, sender_side)
    if action in ("delayed", "delivered", "relayed", "expanded"):
        gave_up = action == "delayed" and bool(_GAVE_UP.search(diagnostic or ""))
        return Verdict(FAILED if gave_up else DELAYED, code, sender_side and gave_up)
    # No usable Action: the code decides, then the words.
    if code and code.startswith("5"):
        return Verdict(FAILED, code, sender_side)
    reply = _REPLY.search(diagnostic or "")
    if code is None and reply and reply.group(1) == "5":
        return Verdict(FAILED, code, sender_side)
    if _STILL_TRYING.search(evidence) and not _GAVE_UP.search(_without_delay_words(evidence)):
        return Verdict(DELAYED, code, False)
    reply = _REPLY.search(diagnostic or text)
    if code is None and reply and reply.group(1) == "4" and _STILL_TRYING.search(evidence):
        return Verdict(DELAYED, code, False)
    if code or _GAVE_UP.search(evidence):
        return Verdict(FAILED, code, sender_side)
    return Verdict(UNKNOWN, code, False)  # a report that says nothing we can act on


def _without_delay_words(text: str) -> str:
    """A delay notice says "has not yet been delivered": not a sign of giving up."""
    return re.sub(r"not yet been delivered|has not been delivered yet", " ", text, flags=re.I)
