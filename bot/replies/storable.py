"""What a customer sent, made fit for the database before anything reads it.

PostgreSQL refuses a NUL (U+0000) anywhere in text, and a lone surrogate (what a bad decode
leaves) cannot be written as UTF-8 at all; either would fail the statement and lose the message.
Each becomes U+FFFD, the replacement character, in every text arbot stores, matches or classifies;
the message exactly as it came is kept apart as bytes (`InboundMessage.raw_bytes`). Values longer
than their column are cut to it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields, replace
from typing import Any, TypeVar

from integrations.base.inbound import Bounce, InboundEmail

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
SENDER_CHARS = 320  # InboundMessage.sender
MESSAGE_ID_CHARS = 998  # InboundMessage.message_id (RFC 5322's longest line)

_Record = TypeVar("_Record", InboundEmail, Bounce)


def storable(text: str) -> str:
    """`text` with each NUL and lone surrogate replaced by U+FFFD."""
    return UNSTORABLE.sub(REPLACEMENT, text)


def storable_raw(raw: bytes | str) -> tuple[str, bytes | None]:
    """(the message as text, for `raw`; the bytes as they came, for `raw_bytes`, when that text is
    not exactly them: a NUL, bytes that are not UTF-8, a lone surrogate)."""
    if isinstance(raw, bytes):
        text = storable(raw.decode("utf-8", errors="replace"))
        return text, None if text.encode("utf-8") == raw else raw
    text = storable(raw)
    return text, None if text == raw else raw.encode("utf-8", errors="surrogatepass")


def raw_digest(raw: bytes | str) -> str:
    """SHA-256 (hex) of a message as it came, line endings made one ("\r\n" and "\n" alike) and
    blank space at its ends ignored: the same message delivered twice has the same digest."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogatepass")
    return hashlib.sha256(data.replace(b"\r\n", b"\n").strip()).hexdigest()


def storable_email(mail: InboundEmail) -> InboundEmail:
    """The mail with every text in it storable (its bounce report's too), and its sender and
    Message-ID no longer than their columns."""
    clean = _storable_record(mail)
    return replace(
        clean,
        sender=clean.sender[:SENDER_CHARS],
        message_id=clean.message_id[:MESSAGE_ID_CHARS] if clean.message_id else clean.message_id,
    )


def storable_sms(sender: str, provider_id: str | None) -> tuple[str, str | None]:
    """A text's sender and provider id, storable and no longer than their columns."""
    return (
        storable(sender)[:SENDER_CHARS],
        storable(provider_id)[:MESSAGE_ID_CHARS] if provider_id else provider_id,
    )


def _storable_record(record: _Record) -> _Record:
    changes: dict[str, Any] = {}
    for field in fields(record):
        value = getattr(record, field.name)
        if isinstance(value, str):
            changes[field.name] = storable(value)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(storable(v) if isinstance(v, str) else v for v in value)
        elif isinstance(value, Bounce):
            changes[field.name] = _storable_record(value)
    return replace(record, **changes)
