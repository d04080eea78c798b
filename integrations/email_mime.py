"""A reminder as the bytes of an email: headers and a multipart/alternative body (text, then HTML),
written directly rather than through `email.message.EmailMessage`, whose header objects cost
milliseconds a message (most of a send). What it writes is plain MIME that any reader parses:

- header values are ASCII: display names and subjects with other characters become RFC 2047
  encoded words (UTF-8), and a long value is folded at a space; a line break in any value, or an
  address that is not ASCII, makes the message invalid (ValueError), as EmailMessage would;
- each body is UTF-8, sent as 7bit when it is ASCII with no line over 998 characters (RFC 2045),
  else quoted-printable;
- every line ends in CRLF, as SMTP wants.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Iterable
from email.header import Header
from email.utils import formataddr

FOLD_AT = 78  # RFC 5322: lines SHOULD be at most 78 characters
LONGEST_LINE = 998  # ... and MUST be at most 998 (RFC 2045's 7bit)
CRLF = "\r\n"


def plain(name: str, value: str) -> str:
    """A value written as it is: refused when it holds a line break (it would end the header)."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"the {name} header may not hold a line break")
    return value


def _ascii_address(address: str) -> str:
    if not address.isascii():
        raise ValueError(f"{address!r} is not an ASCII address")
    return address


def mailbox(name: str | None, address: str) -> str:
    """`Name <address>`, the name quoted or encoded as it needs (formataddr's rules)."""
    plain("address", name or "")
    return formataddr((name or "", _ascii_address(plain("address", address))), charset="utf-8")


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


def email_bytes(headers: Iterable[tuple[str, str]], text: str, html: str | None) -> bytes:
    """The whole message: `headers` (name and value, each value made by `plain`, `mailbox` or
    `text_value`), MIME-Version, and the text (and HTML) bodies."""
    head = [_fold(name, value) for name, value in headers]
    head.append("MIME-Version: 1.0")
    if html is None:
        return (CRLF.join(head) + CRLF + _body(text, "plain")).encode("ascii")
    boundary = f"==============={secrets.token_hex(12)}=="
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    # The line break before a boundary belongs to the boundary: each body keeps its own last.
    parts = [
        CRLF.join(head) + CRLF + CRLF,
        f"--{boundary}{CRLF}",
        _body(text, "plain"),
        f"{CRLF}--{boundary}{CRLF}",
        _body(html, "html"),
        f"{CRLF}--{boundary}--{CRLF}",
    ]
    return "".join(parts).encode("ascii")
