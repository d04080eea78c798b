"""Bounces written for people instead of as RFC 3464 reports (Exim, qmail, Yahoo, older Gmail,
Exchange 2003, Google Groups, OpenSMTPD, DragonFly and many more), and the failed recipient of a
report whose status block names none.

A message is only read as a bounce when a mail system sent it (MAILER-DAEMON or postmaster, the
null sender `From: <>`, an empty return path, an X-Failed-Recipients header, a bounce's subject from
a no-reply address): a person's reply that quotes an address is never taken for one. The failed
addresses come from flufl.bounce (GNU Mailman's bounce detectors, which know the wording of each
of those mail systems), else from the X-Failed-Recipients header, else from the address the notice
says it could not deliver to (a `RCPT TO:` it quotes, "Could not be delivered to: <...>"), else
from the returned original's `To:`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

log = logging.getLogger(__name__)

MAIL_SYSTEMS = frozenset(
    {
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "postmaster",
        "post_master",
        "mdaemon",
    }
)
# Addresses no person writes from: a provider's notice about a delivery comes from one of them.
NO_REPLY = frozenset({"no-reply", "noreply", "no_reply", "do-not-reply", "donotreply"})
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|failed|has failed|problem)"
    r"|failure notice|mail delivery (?:failed|failure|system|subsystem)|returned mail"
    r"|non[- ]?delivery|delivery notification|could not (?:be )?deliver|not delivered"
    r"|mail system error|error sending|trouble delivering|delivery report|message you sent|bounce|rejected|nicht zustellbar"
    r"|unzustellbar|non remis|no entregado|non recapitato|配信|未達|エラー"
    r"|не доставлено|недоставлено|returned to sender",
    re.IGNORECASE,
)
# Where the returned original starts in a bounce written for people.
_ORIGINAL_STARTS = re.compile(
    r"^.*(?:original message|message headers follow|copy of (?:the|your) message|"
    r"below this line|returned message|undelivered message|original headers|"
    r"message header follows|unsent message below|headers of the original).*$",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# A line of a notice that names the address it could not deliver to: the envelope recipient of a
# session transcript ("RCPT TO: jo@example.org"), or a notice's own words.
_NAMES_FAILED = re.compile(
    r"^\s*(?:RCPT TO\s*:|(?:could not|couldn't|cannot) be delivered to\s*:).*$",
    re.IGNORECASE | re.MULTILINE,
)


def from_mail_system(message: Message, sender: str, subject: str | None) -> bool:
    """Whether a mail system (not a person) sent the message about a delivery."""
    local = sender.partition("@")[0]
    if local in MAIL_SYSTEMS or local.startswith("mailer-daemon") or "mail.delivery" in local:
        return True
    if message.get("X-Failed-Recipients") or null_sender(message):
        return True
    return_path = str(message.get("Return-Path") or "").strip()
    if return_path.strip("<>").partition("@")[0].lower() in MAIL_SYSTEMS:
        return True
    looks_like_bounce = bool(subject and BOUNCE_SUBJECT.search(subject))
    if looks_like_bounce and local in NO_REPLY and not _forwarded_or_answered(subject):
        return True
    if return_path == "<>" or not sender:
        return looks_like_bounce or bool(message.get("Auto-Submitted"))
    return looks_like_bounce and bool(message.get("Auto-Submitted"))


def null_sender(message: Message) -> bool:
    """Whether the message says it is from the null sender (`From: <>`, a mail system's notice
    that must never be answered, RFC 5321 §4.5.5)."""
    return bool(re.fullmatch(r"[^<>@]*<\s*>\s*", str(message.get("From") or "")))


def _forwarded_or_answered(subject: str | None) -> bool:
    return bool(subject and re.match(r"\s*(?:fwd?|re|aw|tr|wg|sv|vs)\s*:", subject, re.I))


def failed_addresses(message: Message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(temporary, permanent) failed addresses flufl.bounce finds, lowercased. A detector that
    trips over a malformed message finds nothing rather than losing the message."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a third-party detector's bug must not lose an inbound message
        log.warning("bounce detectors failed on a message; read as no addresses", exc_info=True)
        return (), ()
    return _clean(temporary), _clean(permanent)


def header_recipients(message: Message) -> tuple[str, ...]:
    """X-Failed-Recipients (Exim), the most direct answer there is."""
    values = [str(v) for v in message.get_all("X-Failed-Recipients") or []]
    return _clean(address for _, address in getaddresses(values))


def named_recipients(message: Message) -> tuple[str, ...]:
    """The addresses the notice's words say it could not deliver to (its `RCPT TO:` lines, "Could
    not be delivered to: <...>"), outside the returned original."""
    lines = _NAMES_FAILED.findall(notice_text(message))
    return _clean(a for line in lines for a in _ADDRESS.findall(line))


def original_recipients(message: Message, own: tuple[str, ...]) -> tuple[str, ...]:
    """The `To:` of the returned original (attached, or quoted after a marker), minus the
    addresses the report itself was sent to or from."""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _clean(a for _, a in getaddresses(inner.get_all("To") or []))
                found = tuple(a for a in found if a not in own)
                if found:
                    return found
    text = body_text(message)
    marker = _ORIGINAL_STARTS.search(text)
    if marker is not None:
        quoted = re.search(r"^\s*To:\s*(.+)$", text[marker.end() :], re.MULTILINE | re.IGNORECASE)
        if quoted:
            found = tuple(a for a in _clean(_ADDRESS.findall(quoted.group(1))) if a not in own)
            if found:
                return found
    return ()


def notice_recipients(message: Message, own: tuple[str, ...]) -> tuple[str, ...]:
    """Last resort: the addresses the notice's own words name, other than the report's sender
    and recipients and any mail system's."""
    found = _clean(_ADDRESS.findall(notice_text(message)))
    return tuple(a for a in found if a not in own and a.partition("@")[0] not in MAIL_SYSTEMS)


def notice_text(message: Message) -> str:
    """The words of the notice itself, without the returned original."""
    text = body_text(message)
    marker = _ORIGINAL_STARTS.search(text)
    return text[: marker.start()] if marker is not None else text


def diagnostic_line(text: str) -> str | None:
    """The remote server's answer as the notice quotes it: the first line with an SMTP code."""
    for line in text.splitlines():
        if re.search(r"(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.])|(?:^|\s)[45]\d\d[\s-]", line):
            return " ".join(line.split())[:500] or None
    return None


def body_text(message: Message) -> str:
    """Every text part outside attached messages, decoded best-effort, joined."""
    texts = []
    for part in _leaves(message):
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        text = None
        with contextlib.suppress(LookupError, UnicodeError):
            text = data.decode(charset)
        texts.append(text if text is not None else data.decode("utf-8", errors="replace"))
    return "\n".join(t.replace("\r\n", "\n").replace("\r", "\n") for t in texts)


def _leaves(part: Message, nested: bool = False) -> list[Message]:
    if part.get_content_maintype() == "message":
        return []
    if part.is_multipart():
        payload = part.get_payload()
        children = (
            [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        )
        return [leaf for child in children for leaf in _leaves(child, nested=True)]
    # A part inside the message that says it is multipart but whose boundary was lost (Verizon
    # folds `boundary=` onto a line of its own, no longer part of the header) is read as the text
    # it now is. The message itself is not: its text would carry the returned original's too.
    lost = nested and part.get_content_maintype() == "multipart"
    return [part] if part.get_content_maintype() == "text" or lost else []


def _clean(addresses: object) -> tuple[str, ...]:
    found = []
    for address in addresses:  # type: ignore[attr-defined]
        text = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
        text = text.strip().strip("<>").lower()
        if _ADDRESS.fullmatch(text):
            found.append(text)
    return tuple(dict.fromkeys(found))
