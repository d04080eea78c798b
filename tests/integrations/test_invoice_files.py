"""A CSV ledger's invoice copies: fetched from its pdf_url over real HTTP (a local server), or
read from ARBOT_INVOICE_PDF_DIR, with every refusal saying why: a page that is not the PDF, a
404, a server that is down (tried later), a copy over the limit (stopped reading), and invoice
numbers or links that would reach a file outside the folder."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from integrations.base.documents import CopyRefused
from integrations.invoice_files import InvoiceFiles
from tests.support.fake_http import LocalServer

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"
LIMIT = 10_000


class _Files(BaseHTTPRequestHandler):
    """Serves a few paths the way web servers do: PDFs, a sign-in page, errors, a redirect, and
    a large file sent without a Content-Length (chunked)."""

    seen: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/big-chunked.pdf":
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(100):
                chunk = b"%PDF-" + b"x" * 995
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        answers: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
            "/INV-1042.pdf": (200, "application/pdf", PDF, {}),
            "/moved": (302, "text/plain", b"", {"Location": "/INV-1042.pdf"}),
            "/login": (200, "text/html; charset=utf-8", b"<html>Sign in</html>", {}),
            "/down.pdf": (503, "text/plain", b"later", {}),
            "/big.pdf": (200, "application/pdf", PDF + b"x" * LIMIT, {}),
        }
        status, kind, body, headers = answers.get(self.path, (404, "text/plain", b"no", {}))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def host() -> Iterator[tuple[LocalServer, list[str]]]:
    seen: list[str] = []
    server = LocalServer(type("Files", (_Files,), {"seen": seen})).start()
    yield server, seen
    server.stop()


def test_a_pdf_url_is_fetched_following_a_redirect(host: tuple[LocalServer, list[str]]) -> None:
    server, seen = host
    files = InvoiceFiles(None)
    assert files.copy("INV-1042", f"{server.url}/INV-1042.pdf", LIMIT) == PDF
    assert files.copy("INV-1042", f"{server.url}/moved", LIMIT) == PDF
    assert seen == ["/INV-1042.pdf", "/moved", "/INV-1042.pdf"]


def test_a_pdf_url_that_is_not_the_pdf_itself_or_is_gone_is_refused(
    host: tuple[LocalServer, list[str]],
) -> None:
    server, _seen = host
    files = InvoiceFiles(None)
    with pytest.raises(CopyRefused, match="is text/html, not application/pdf") as page:
        files.copy("INV-1", f"{server.url}/login", LIMIT)
    with pytest.raises(CopyRefused, match="answered 404; check the address") as gone:
        files.copy("INV-1", f"{server.url}/nowhere.pdf", LIMIT)
    with pytest.raises(CopyRefused, match="answered 503") as down:
        files.copy("INV-1", f"{server.url}/down.pdf", LIMIT)
    assert (page.value.later, gone.value.later, down.value.later) == (False, False, True)
    with pytest.raises(CopyRefused, match="not an http"):
        files.copy("INV-1", "file:///etc/passwd", LIMIT)


def test_a_pdf_url_over_the_limit_is_refused_without_reading_it_all(
    host: tuple[LocalServer, list[str]],
) -> None:
    server, _seen = host
    files = InvoiceFiles(None)
    with pytest.raises(CopyRefused, match=r"is 10 kB, over the 10 kB limit"):
        files.copy("INV-1", f"{server.url}/big.pdf", LIMIT)
    with pytest.raises(CopyRefused, match="over the 10 kB limit; it was not read further"):
        files.copy("INV-1", f"{server.url}/big-chunked.pdf", LIMIT)


def test_a_copy_is_read_from_the_folder_by_its_invoice_number(tmp_path: Path) -> None:
    (tmp_path / "INV-1042.pdf").write_bytes(PDF)
    (tmp_path / "INV-7.pdf").write_bytes(b"not a pdf")
    files = InvoiceFiles(tmp_path)
    assert files.copy("INV-1042", None, LIMIT) == PDF
    with pytest.raises(CopyRefused, match=r"is missing: put INV-9\.pdf in"):
        files.copy("INV-9", None, LIMIT)
    with pytest.raises(CopyRefused, match="is not a PDF"):
        files.copy("INV-7", None, LIMIT)


def test_no_invoice_number_reaches_a_file_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "copies"
    folder.mkdir()
    (tmp_path / "secret.pdf").write_bytes(PDF)
    (folder / "LINK.pdf").symlink_to(tmp_path / "secret.pdf")
    files = InvoiceFiles(folder)
    for number in ("../secret", "..\\secret", "/etc/secret", ".hidden", "a/../../secret", ""):
        with pytest.raises(CopyRefused, match="cannot name a file"):
            files.copy(number, None, LIMIT)
    with pytest.raises(CopyRefused, match="outside the folder"):
        files.copy("LINK", None, LIMIT)


def test_without_a_pdf_url_or_a_folder_it_says_how_to_give_one() -> None:
    with pytest.raises(CopyRefused, match=r"give it a pdf_url .* or set ARBOT_INVOICE_PDF_DIR"):
        InvoiceFiles(None).copy("INV-1", None, LIMIT)
