"""A reminder as the bytes of an email: headers and a multipart/alternative body (text, then HTML),
written directly rather than through `email.message.EmailMessage`, whose header objects cost
milliseconds a message (most of a send). What it writes is plain MIME that any reader parses:

- header values are ASCII: display names and subjects with other characters become RFC 2047
  encoded words (UTF-8), an internationalised domain is written in its IDNA form
  (`xn--bcher-kva.de`), and a long value is folded at a space; a line break in any value, or an
  address with other characters before the @ (which needs SMTPUTF8), makes the message invalid
  (ValueError), as EmailMessage would;
- each body is UTF-8, sent as 7bit when it is ASCII with no line over 998 characters (RFC 2045),
  else quoted-printable;
- every line ends in CRLF, as SMTP wants.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from email.header import Header
from email.utils import formataddr

from email_validator import EmailNotValidError, validate_email

from integrations.base.outbound import Attachment

FOLD_AT = 78  # RFC 5322: lines SHOULD be at most 78 characters
LONGEST_LINE = 998  # ... and MUST be at most 998 (RFC 2045's 7bit)
CRLF = "\r\n"
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
_ANGLED = re.compile(r"<[^<>]*>")  # a Message-ID and its angle brackets, written well or not
_WRITABLE_ID = re.compile(r"<[!-;=?-~]+>")  # printable ASCII, no space and no other < or >


def plain(name: str, value: str) -> str:
    """A value written as it is: refused when it holds a line break (it would end the header)."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"the {name} header may not hold a line break")
    return value


def message_ids(value: str | None) -> str | None:
    """The Message-IDs in `value` (In-Reply-To, References) that can be written in a header: each
    `<...>` of printable ASCII without spaces, the others left out (a customer's mail system may
    put letters outside ASCII in its ids). None when none is left."""
    kept = [found for found in _ANGLED.findall(value or "") if _WRITABLE_ID.fullmatch(found)]
    return " ".join(kept) or None


def ascii_address(address: str) -> str:
    """The address as SMTP and headers carry it: an internationalised domain in its IDNA form.
    ValueError when it cannot be written so: letters outside ASCII before the @, or no address."""
    if address.isascii():
        return address
    try:
        found = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{address!r} is not an address mail can be sent to: {exc}") from None
    if found.ascii_email is None:
        raise ValueError(
            f"{address!r} cannot be sent to: it has letters outside ASCII before the @, which "
            "most mail servers refuse; correct the contact's email in the ledger"
        )
    return found.ascii_email


def mailbox(name: str | None, address: str) -> str:
    """`Name <address>`, the name quoted or encoded as it needs (formataddr's rules)."""
    plain("address", name or "")
    return formataddr((name or "", ascii_address(plain("address", address))), charset="utf-8")


def text_value(value: str) -> str:
    """An unstructured value (a subject): as it is when ASCII, else RFC 2047 encoded words."""
    plain("subject", value)
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=FOLD_AT, linesep=CRLF)


def _fold(name: str, value: str) -> str:
    """`Name: value`, folded at spaces so that lines stay near FOLD_AT characters."""
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT or CRLF in value:
        return line
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > FOLD_AT and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current += f" {word}"
    lines.append(current)
    return CRLF.join(lines)


def _body(content: str, subtype: str) -> str:
    """One text part; it ends in a line break, as EmailMessage's always did."""
    data = content.replace("\r\n", "\n").replace("\r", "\n")
    lines = data.removesuffix("\n").split("\n")
    text = CRLF.join(lines) + CRLF
    if data.isascii() and all(len(line) <= LONGEST_LINE for line in lines):
        encoding, payload = "7bit", text
    else:  # b2a_qp breaks lines as the text does: CRLF, since it ends in one
        encoding = "quoted-printable"
        payload = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}{payload}"
    )


def email_bytes(
    headers: Iterable[tuple[str, str]],
    text: str,
    html: str | None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """The whole message: `headers` (name and value, each value made by `plain`, `mailbox` or
    `text_value`), MIME-Version, and the text (and HTML) bodies; with `attachments`, those
    bodies and then each file, in a multipart/mixed."""
    head = [_fold(name, value) for name, value in headers]
    head.append("MIME-Version: 1.0")
    content = _bodies(text, html)
    if attachments:
        boundary = _boundary()
        parts = [f'Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}{CRLF}']
        parts += [f"--{boundary}{CRLF}", content]
        for attachment in attachments:
            parts += [f"{CRLF}--{boundary}{CRLF}", _file(attachment)]
        parts.append(f"{CRLF}--{boundary}--{CRLF}")
        content = "".join(parts)
    return (CRLF.join(head) + CRLF + content).encode("ascii")


def _boundary() -> str:
    return f"==============={secrets.token_hex(12)}=="


def _bodies(text: str, html: str | None) -> str:
    """The text body, or the text and HTML bodies in a multipart/alternative: one MIME entity,
    its headers and then its content."""
    if html is None:
        return _body(text, "plain")
    boundary = _boundary()
    # The line break before a boundary belongs to the boundary: each body keeps its own last.
    parts = [
        f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}{CRLF}',
        f"--{boundary}{CRLF}",
        _body(text, "plain"),
        f"{CRLF}--{boundary}{CRLF}",
        _body(html, "html"),
        f"{CRLF}--{boundary}--{CRLF}",
    ]
    return "".join(parts)


def _file(attachment: Attachment) -> str:
    """One attached file, base64 in lines of 76 characters (RFC 2045)."""
    name = attachment.filename
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(f"the attachment name {name!r} may hold only letters, digits, . _ -")
    kind = plain("Content-Type", attachment.content_type)
    data = base64.encodebytes(attachment.data).decode("ascii").replace("\n", CRLF)
    return (
        f'Content-Type: {kind}; name="{name}"{CRLF}'
        f'Content-Disposition: attachment; filename="{name}"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{data}"
    )
