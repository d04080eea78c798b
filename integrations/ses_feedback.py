"""Amazon SES feedback by email: an SNS topic with an email subscription sends each bounce,
complaint or delivery notification as a JSON body from `no-reply@sns.amazonaws.com` (subject "AWS
Notification Message"), either the notification itself or wrapped in SNS's envelope (`"Type":
"Notification"`, the notification as the string `Message`). A bounce names each recipient with its
action, status and diagnostic; a complaint names who complained; a delivery is only a receipt."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SNS_SENDER = "@sns.amazonaws.com"


@dataclass(frozen=True)
class Recipient:
    address: str
    action: str | None
    status: str | None
    diagnostic: str | None


@dataclass(frozen=True)
class Feedback:
    kind: str  # "Bounce", "Complaint", "Delivery", ... as SES names it
    permanent: bool  # a bounce whose bounceType is "Permanent"
    recipients: tuple[Recipient, ...]  # bounced, complained, or delivered to
    feedback_type: str | None  # a complaint's complaintFeedbackType, e.g. "abuse"
    original_message_id: str | None  # the Message-ID header of the message it is about


def read(text: str) -> Feedback | None:
    """The SES notification `text` (the body of a mail from SNS_SENDER) is, else None."""
    notice = _json(text)
    if notice is not None and notice.get("Type") == "Notification":
        notice = _json(str(notice.get("Message") or ""))
    if notice is None or not isinstance(notice.get("notificationType"), str):
        return None
    kind = notice["notificationType"]
    detail = _dict(notice.get(kind[:1].lower() + kind[1:]))
    if kind == "Bounce":
        listed = detail.get("bouncedRecipients")
    elif kind == "Complaint":
        listed = detail.get("complainedRecipients")
    else:
        listed = [{"emailAddress": a} for a in _dict(notice.get("mail")).get("destination") or []]
    return Feedback(
        kind=kind,
        permanent=kind == "Bounce" and detail.get("bounceType") == "Permanent",
        recipients=tuple(_recipients(listed)),
        feedback_type=_text(detail.get("complaintFeedbackType")),
        original_message_id=_original_id(_dict(notice.get("mail"))),
    )


def _recipients(listed: object) -> list[Recipient]:
    found = []
    for item in listed if isinstance(listed, list) else []:
        entry = _dict(item)
        address = (_text(entry.get("emailAddress")) or "").strip().strip("<>").lower()
        if "@" in address:
            found.append(
                Recipient(
                    address,
                    (_text(entry.get("action")) or "").lower() or None,
                    _text(entry.get("status")),
                    _text(entry.get("diagnosticCode")),
                )
            )
    return found


def _original_id(mail: dict[str, Any]) -> str | None:
    """Our Message-ID as the sent message carried it (SES's own messageId is not it)."""
    for header in mail.get("headers") or []:
        entry = _dict(header)
        if str(entry.get("name", "")).lower() == "message-id":
            found = re.search(r"<[^<>\s]+>", str(entry.get("value", "")))
            if found:
                return found.group()
    found = re.search(r"<[^<>\s]+>", str(_dict(mail.get("commonHeaders")).get("messageId", "")))
    return found.group() if found else None


def _json(text: str) -> dict[str, Any] | None:
    # A mail server on the way breaks lines longer than SMTP allows as sendmail does ("!", a line
    # break and a space), which JSON cannot hold inside a string: joined back first.
    text = re.sub(r"!\r?\n ", "", text)
    start = text.find("{")
    if start < 0:
        return None
    try:  # what follows it (SNS's unsubscribe footer) is not part of it
        value, _ = json.JSONDecoder(strict=False).raw_decode(text, start)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
