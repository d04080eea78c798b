"""Postmark's inbound webhook: a JSON document of the message's parsed fields, posted to a URL
that carries basic-auth credentials. With "Include raw email content" on, `RawEmail` is the
message as it arrived; otherwise it is made again from the fields, `Headers` included (the
sender's Message-ID, In-Reply-To and References are there; Postmark's own `MessageID` is not the
message's)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from integrations.inbound_mail.rebuild import Attachment, rebuilt_message

# Postmark gives these as fields of their own, decoded, and leaves them out of `Headers`.
LISTED_FIELDS = (
    ("From", "From"),
    ("To", "To"),
    ("Cc", "Cc"),
    ("Subject", "Subject"),
    ("Date", "Date"),
    ("ReplyTo", "Reply-To"),
)


class NotPostmark(ValueError):
    """The body is not Postmark's inbound JSON; the message says what is missing."""


def message_from_json(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotPostmark("the body is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Headers", []), list):
        raise NotPostmark("the body is not Postmark's inbound message (an object with Headers)")
    raw = document.get("RawEmail")
    if isinstance(raw, str) and raw.strip():
        return raw.encode("utf-8", errors="surrogateescape")
    if not any(isinstance(document.get(k), str) for k in ("From", "TextBody", "HtmlBody")):
        raise NotPostmark("the body has none of From, TextBody and HtmlBody")
    return rebuilt_message(
        _headers(document),
        _text(document.get("TextBody")),
        _text(document.get("HtmlBody")) or None,
        _attachments(document.get("Attachments")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _headers(document: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [
        (name, _from(document) if key == "From" else _text(document.get(key)))
        for key, name in LISTED_FIELDS
    ]
    headers = [(name, value) for name, value in headers if value]
    given = {name.lower() for name, _ in headers}
    for item in document.get("Headers") or []:
        if isinstance(item, dict):
            name, value = _text(item.get("Name")), _text(item.get("Value"))
            if name and name.lower() not in given:
                headers.append((name, value))
    return headers


def _from(document: dict[str, Any]) -> str:
    full = document.get("FromFull")
    if isinstance(full, dict) and _text(full.get("Email")):
        name = _text(full.get("Name")).replace('"', "'")
        return f'"{name}" <{full["Email"]}>' if name else str(full["Email"])
    return _text(document.get("From"))


def _attachments(listed: Any) -> list[Attachment]:
    found = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            content = base64.b64decode(_text(item.get("Content")), validate=True)
        except (binascii.Error, ValueError):
            continue
        found.append(Attachment(_text(item.get("Name")), _text(item.get("ContentType")), content))
    return found
