"""Spam complaints: an abuse report (ARF, RFC 5965: `multipart/report;
report-type=feedback-report`), as mailbox providers' feedback loops send them (Yahoo's among
them), says the recipient marked one of our messages as spam. So does Microsoft's junk mail
reporting program (Hotmail, Outlook.com), which sends no ARF: a mail from staff@hotmail.com with
the message attached whole, marked X-HmXmrOriginalRecipient. The address it names is the one who
complained: from the report's Original-Rcpt-To (or that mark), else the returned original's `To:`.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses

FEEDBACK_SENDERS = ("@arf.mail.yahoo.com", "@fbl.", "@feedback.")
JMRP_SENDER = "staff@hotmail.com"
JMRP_MARK = "X-HmXmrOriginalRecipient"


def is_complaint(message: Message, sender: str) -> bool:
    """An abuse report (ARF), or a mail from a known feedback-loop address."""
    if message.get_content_type() == "multipart/report":
        kind = message.get_param("report-type")
        if isinstance(kind, str) and kind.lower() == "feedback-report":
            return True
    if sender == JMRP_SENDER and _jmrp_original(message) is not None:
        return True
    return (
        any(marker in sender for marker in FEEDBACK_SENDERS) and _feedback_part(message) is not None
    )


def complained(message: Message) -> tuple[tuple[str, ...], str | None, str | None]:
    """(the addresses that complained, the feedback type, the returned original's Message-ID)."""
    report = _feedback_part(message)
    addresses: list[str] = []
    kind = None
    if report is not None:
        fields = HeaderParser(policy=compat32).parsestr(_text(report))
        kind = (fields.get("Feedback-Type") or "").strip().lower() or None
        values = [str(v) for v in fields.get_all("Original-Rcpt-To") or []]
        addresses += [a for _, a in getaddresses(values)]
    marked = _jmrp_original(message)
    if marked is not None:  # Microsoft's report: every one is about junk mail
        kind = kind or "abuse"
        addresses += [a for _, a in getaddresses([str(v) for v in marked.get_all(JMRP_MARK) or []])]
    original_id = None
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            inner = _inner(part)
            if inner is None:
                continue
            if not addresses:
                addresses += [a for _, a in getaddresses(inner.get_all("To") or [])]
            found = re.search(r"<[^<>\s]+>", str(inner.get("Message-ID") or ""))
            original_id = original_id or (found.group() if found else None)
    clean = (a.strip().strip("<>").lower() for a in addresses)
    return tuple(dict.fromkeys(a for a in clean if "@" in a)), kind, original_id


def _jmrp_original(message: Message) -> Message | None:
    """The attached message Microsoft marked with the address that reported it, if any."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = _inner(part)
            if inner is not None and inner.get(JMRP_MARK):
                return inner
    return None


def _feedback_part(message: Message) -> Message | None:
    return next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )


def _inner(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return HeaderParser(policy=compat32).parsestr(payload)
    return None


def _text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as a message of header groups
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items())
            for block in payload
            if isinstance(block, Message)
        )
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
