"""Amazon SES receipt rules that publish to SNS: the notification (notificationType "Received")
carries the message in `content` when the rule's action is SNS (encoding UTF8 or BASE64). When
the rule stores the message in S3 instead, the notification names the bucket and key (and, in
`mail`, who sent it and its subject): the message is then read from S3 (integrations/inbound_mail/
s3.py)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredInS3:
    bucket: str
    key: str
    sender: str = ""
    subject: str = ""


class NotSesMail(ValueError):
    """A notification that carries no received message; the text says what it is."""


def message_from_notification(notification: dict[str, Any]) -> bytes | StoredInS3:
    kind = notification.get("notificationType")
    if kind != "Received":
        raise NotSesMail(f"an SES notification of type {kind!r}, not a received message")
    receipt = notification.get("receipt")
    action = receipt.get("action") if isinstance(receipt, dict) else None
    action = action if isinstance(action, dict) else {}
    content = notification.get("content")
    if isinstance(content, str):
        if str(action.get("encoding", "")).upper() == "BASE64":
            try:
                return base64.b64decode(content, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise NotSesMail("the notification's content is not base64") from exc
        return content.encode("utf-8", errors="surrogateescape")
    if action.get("type") == "S3":
        mail = notification.get("mail")
        mail = mail if isinstance(mail, dict) else {}
        common = mail.get("commonHeaders")
        common = common if isinstance(common, dict) else {}
        return StoredInS3(
            str(action.get("bucketName", "")),
            str(action.get("objectKey", "")),
            sender=str(mail.get("source") or ""),
            subject=str(common.get("subject") or ""),
        )
    raise NotSesMail("the notification carries no content and names no S3 object")
