"""An RFC 5322 message made again from a service's parsed fields (Postmark's JSON, Mailgun's
parsed form): the headers as the service lists them (Message-ID, In-Reply-To and References
with them, which is how a reply is matched to what was sent), the text and HTML bodies and any
attachments in a new MIME body."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage

# The new body brings its own; the service's would describe a body that is no longer there.
BODY_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
HEADER_NAME = re.compile(r"[!-9;-~]{1,100}")  # RFC 5322 ftext


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


def rebuilt_message(
    headers: Iterable[tuple[str, str]],
    text: str,
    html: str | None = None,
    attachments: Iterable[Attachment] = (),
) -> bytes:
    body = EmailMessage()
    body.set_content(text or "")
    if html:
        body.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not (maintype and subtype) or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        body.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename or "attachment",
        )
    lines = [
        f"{name}: {_encoded(value)}"
        for name, value in headers
        if HEADER_NAME.fullmatch(name) and name.lower() not in BODY_HEADERS
    ]
    head = "".join(line + "\r\n" for line in lines).encode("ascii")
    return head + body.as_bytes(policy=body.policy.clone(linesep="\r\n"))


def _encoded(value: str) -> str:
    """One line (a line break in a value would start a header of its own), RFC 2047 when it is
    not ASCII."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")
