"""A CSV ledger's invoice copies: fetched from the row's `pdf_url` (http or https) or read from
the folder ARBOT_INVOICE_PDF_DIR, where each invoice's copy is `<invoice number>.pdf`.

A URL is fetched with httpx (redirects followed, at most MAX_REDIRECTS, and only to http(s)),
read as a stream that stops at the size the caller allows, and taken only when it answers 200
with `Content-Type: application/pdf` and the body is a PDF. A folder's file is found only by a
number that is a plain file name (no `/`, `\\`, leading `.`): the path, symlinks resolved, must
lie inside the folder, so no invoice number reaches another file."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx

from integrations.base.documents import PDF_TYPE, CopyRefused, checked_pdf, megabytes

TIMEOUT_SECONDS = 30
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class InvoiceFiles:
    """FileCopies over HTTP(S) and a folder."""

    def __init__(self, folder: Path | None, http: httpx.Client | None = None) -> None:
        self.folder = folder
        self.http = http  # None: a client of its own for each fetch, closed after it

    def copy(self, number: str, url: str | None, max_bytes: int) -> bytes:
        if url:
            return self.from_url(number, url, max_bytes)
        if self.folder is not None:
            return self.from_folder(number, max_bytes)
        raise CopyRefused(
            f"there is no copy of invoice {number} to attach: give it a pdf_url in the ledger "
            "CSV, or set ARBOT_INVOICE_PDF_DIR to a folder holding "
            f"{number}.pdf"
        )

    def from_url(self, number: str, url: str, max_bytes: int) -> bytes:
        what = f"the copy of invoice {number} at its pdf_url"
        if not url.lower().startswith(("http://", "https://")):
            raise CopyRefused(f"{what} is not an http(s) address; correct it in the ledger CSV")
        try:
            with ExitStack() as stack:
                http = self.http or stack.enter_context(
                    httpx.Client(
                        timeout=TIMEOUT_SECONDS, follow_redirects=True, max_redirects=MAX_REDIRECTS
                    )
                )
                response = stack.enter_context(
                    http.stream("GET", url, headers={"Accept": PDF_TYPE})
                )
                if response.status_code >= 500 or response.status_code == 429:
                    raise CopyRefused(
                        f"{what} could not be fetched: the server answered "
                        f"{response.status_code}; it is tried again later",
                        later=True,
                    )
                if response.status_code != 200:
                    raise CopyRefused(
                        f"{what} could not be fetched: the server answered "
                        f"{response.status_code}; check the address in the ledger CSV"
                    )
                if response.url.scheme not in ("http", "https"):
                    raise CopyRefused(f"{what} led to a non-http address")
                kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if kind != PDF_TYPE:
                    raise CopyRefused(
                        f"{what} is {kind or 'of no stated type'}, not {PDF_TYPE}: the address "
                        "must lead to the PDF itself, not a page about it"
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise CopyRefused(
                        f"{what} is {megabytes(int(declared))}, over the "
                        f"{megabytes(max_bytes)} limit",
                        too_large=True,
                    )
                data = bytearray()
                for chunk in response.iter_bytes(CHUNK):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise CopyRefused(
                            f"{what} is over the {megabytes(max_bytes)} limit; it was not read "
                            "further",
                            too_large=True,
                        )
        except (httpx.TooManyRedirects, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise CopyRefused(
                f"{what} could not be fetched ({exc}): correct the address in the ledger CSV"
            ) from None
        except httpx.HTTPError as exc:
            raise CopyRefused(
                f"{what} could not be fetched ({exc.__class__.__name__}); it is tried again later",
                later=True,
            ) from None
        return checked_pdf(bytes(data), what, max_bytes)

    def from_folder(self, number: str, max_bytes: int) -> bytes:
        assert self.folder is not None
        what = f"the copy of invoice {number} in ARBOT_INVOICE_PDF_DIR"
        name = f"{number}.pdf"
        if (
            not number
            or number.startswith(".")
            or any(c in number for c in "/\\\x00:")
            or Path(name).name != name
        ):
            raise CopyRefused(
                f"invoice number {number!r} cannot name a file in ARBOT_INVOICE_PDF_DIR; "
                "give the invoice a pdf_url instead"
            )
        folder = self.folder.resolve()
        path = (folder / name).resolve()
        if path.parent != folder:
            raise CopyRefused(f"{what} lies outside the folder (a link); it is not read")
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise CopyRefused(
                    f"{what} is {megabytes(size)}, over the {megabytes(max_bytes)} limit",
                    too_large=True,
                )
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise CopyRefused(f"{what} is missing: put {name} in {self.folder}") from None
        except OSError as exc:
            raise CopyRefused(f"{what} cannot be read: {exc.strerror}") from None
        return checked_pdf(data, what, max_bytes)
