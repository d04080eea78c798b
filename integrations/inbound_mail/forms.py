"""A bounded reader of the HTML forms mail services post (multipart/form-data and
application/x-www-form-urlencoded): the body is already in memory (the route's limit), and at
most `max_fields` fields are read; each is kept as bytes, the first of a name only."""

from __future__ import annotations

from email.message import Message
from urllib.parse import parse_qsl

MAX_FIELDS = 500


class FormError(ValueError):
    """The body is not a form this reader accepts; the message says what is wrong with it."""


def read_form(body: bytes, content_type: str, max_fields: int = MAX_FIELDS) -> dict[str, bytes]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart(body, _boundary(content_type), max_fields)
    if kind == "application/x-www-form-urlencoded":
        return _urlencoded(body, max_fields)
    raise FormError(f"expected a form, got Content-Type {kind or 'none'!r}")


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 200:
        raise FormError("a multipart form needs a boundary of 1 to 200 characters")
    return boundary.encode("latin-1", errors="replace")


def _multipart(body: bytes, boundary: bytes, max_fields: int) -> dict[str, bytes]:
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0:
        raise FormError("the form's boundary is not in its body")
    fields: dict[str, bytes] = {}
    read = 0
    position = start + len(delimiter)
    while not body.startswith(b"--", position):  # "--boundary--" closes the form
        if read == max_fields:
            raise FormError(f"the form has more than {max_fields} fields")
        if not body.startswith(b"\r\n", position):
            raise FormError("a form part does not start on a new line")
        end = body.find(b"\r\n" + delimiter, position)
        if end < 0:
            raise FormError("the form is not closed")
        part = body[position + 2 : end]
        head, separator, value = part.partition(b"\r\n\r\n")
        if not separator:
            head, value = part.removesuffix(b"\r\n"), b""
        name = _field_name(head)
        if name is not None:
            fields.setdefault(name, value)
        read += 1
        position = end + 2 + len(delimiter)
    return fields


def _field_name(head: bytes) -> str | None:
    headers = Message()
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        header, colon, value = line.partition(":")
        if colon and header.strip().lower() == "content-disposition":
            headers["Content-Disposition"] = value.strip()
    name = headers.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None


def _urlencoded(body: bytes, max_fields: int) -> dict[str, bytes]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="surrogateescape"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="surrogateescape",
            max_num_fields=max_fields,
        )
    except ValueError as exc:  # more fields than max_num_fields
        raise FormError(f"the form has more than {max_fields} fields") from exc
    fields: dict[str, bytes] = {}
    for name, value in pairs:
        fields.setdefault(name, value.encode("utf-8", errors="surrogateescape"))
    return fields
