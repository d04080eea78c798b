"""Copies of invoices (PDF): what a ledger source or a CSV ledger's files hand the core, and how
the core says it could not have one.

Each accounting source (QuickBooks Online, Xero, FreshBooks) reads an invoice's PDF as the source
renders it (`PdfSource`); a CSV ledger's copies come from its `pdf_url` column or a folder of
files (`FileCopies`). Whatever the way, what comes back is checked here: it is a PDF (it starts
with `%PDF-`), it is not empty, and it is not larger than the caller allows. Anything else is a
`CopyRefused` naming the invoice and why, never a file sent in its place."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from integrations.base.ledger import TokenStore

PDF_MAGIC = b"%PDF-"
PDF_TYPE = "application/pdf"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class CopyRefused(Exception):
    """No copy of the invoice could be had. `later`: it may work on another try (the source
    was down or rate limited); otherwise a person has to fix something (the message says what).
    `too_large`: the copy is larger than a message may be."""

    def __init__(self, message: str, *, later: bool = False, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.later = later
        self.too_large = too_large


class PdfSource(Protocol):
    def invoice_pdf(self, external_id: str, number: str, max_bytes: int) -> bytes:
        """The invoice's PDF as the source renders it; CopyRefused when it cannot be had."""
        ...


class FileCopies(Protocol):
    def copy(self, number: str, url: str | None, max_bytes: int) -> bytes:
        """A CSV ledger invoice's PDF: from `url` (its pdf_url) when given, else from the
        folder of copies; CopyRefused when it cannot be had."""
        ...


OpenPdfSource = Callable[
    [str, str, TokenStore, Callable[[], datetime]], AbstractContextManager[PdfSource]
]


@dataclass(frozen=True)
class CopyFetchers:
    """Where copies come from: the connected accounting sources (opened by name and tenant, as
    `arbot sync` opens them: integrations/wiring.py) and a CSV ledger's files. None: that way
    is not set up."""

    open_source: OpenPdfSource | None
    files: FileCopies | None


def checked_pdf(data: bytes, what: str, max_bytes: int) -> bytes:
    """`data` when it is a PDF of at most `max_bytes`; CopyRefused (naming `what`) otherwise."""
    if len(data) > max_bytes:
        raise CopyRefused(
            f"{what} is {megabytes(len(data))}, over the {megabytes(max_bytes)} limit",
            too_large=True,
        )
    if not data:
        raise CopyRefused(f"{what} is empty")
    if not data.startswith(PDF_MAGIC):
        start = data[:16].decode("ascii", "replace")
        raise CopyRefused(f"{what} is not a PDF (it starts with {start!r}, not %PDF-)")
    return data


def pdf_filename(number: str) -> str:
    """The attachment's name for an invoice: `INV-1042.pdf`, anything but letters, digits, `.`,
    `_` and `-` written as `_` (a name no mail reader or file system misreads)."""
    name = _UNSAFE_IN_NAME.sub("_", number).strip("._") or "invoice"
    return f"{name[:100]}.pdf"


def megabytes(size: int) -> str:
    """A size in words: `2.5 MB`, or `40 kB` under a megabyte."""
    return f"{size / 1_000_000:.1f} MB" if size >= 1_000_000 else f"{size / 1000:.0f} kB"


def encoded_size(size: int) -> int:
    """How many bytes a file of `size` bytes takes in an email: base64 in lines of 76, each
    with its CRLF (integrations/email_mime.py writes it so)."""
    encoded = 4 * ((size + 2) // 3)
    return encoded + 2 * ((encoded + 75) // 76)
