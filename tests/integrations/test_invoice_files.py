"""A CSV ledger's invoice copies: fetched from its pdf_url over real HTTP (a local server), or
read from ARBOT_INVOICE_PDF_DIR, with every refusal saying why: a page that is not the PDF, a
404, a server that is down (tried later), a copy over the limit (stopped reading), and invoice
numbers or links that would reach a file outside the folder."""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from integrations.base.documents import CopyRefused
from integrations.invoice_files import InvoiceFiles
from tests.support import TLS
from tests.support.fake_http import LocalServer

LOCAL = [
    "127.0.0.1"
]  # the local test server's address, allowed as ARBOT_ALLOW_PRIVATE_PDF_HOSTS does
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
        if self.path == "/host.pdf":  # a copy that says which host it was asked for
            body = PDF + self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        answers: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
            "/INV-1042.pdf": (200, "application/pdf", PDF, {}),
            "/moved": (302, "text/plain", b"", {"Location": "/INV-1042.pdf"}),
            "/loop": (302, "text/plain", b"", {"Location": "/loop"}),
            "/to-file": (302, "text/plain", b"", {"Location": "file:///etc/passwd"}),
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
    files = InvoiceFiles(None, allow_private_hosts=LOCAL)
    assert files.copy("INV-1042", f"{server.url}/INV-1042.pdf", LIMIT) == PDF
    assert files.copy("INV-1042", f"{server.url}/moved", LIMIT) == PDF
    assert seen == ["/INV-1042.pdf", "/moved", "/INV-1042.pdf"]
    # asked of the address the name was vetted at, under the name it was given (Host, TLS)
    port = server.url.rsplit(":", 1)[1]
    by_name = InvoiceFiles(None, allow_private_hosts=["127.0.0.1", "::1"])
    assert by_name.copy("INV-1", f"http://localhost:{port}/host.pdf", LIMIT) == (
        PDF + f"localhost:{port}".encode()
    )


class _Tunnels(socketserver.BaseRequestHandler):
    """An outbound proxy as businesses run them: `CONNECT host:port` opens a tunnel to that
    address (502 when it cannot), each request line noted in `asked`."""

    asked: list[str]

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        line = head.split(b"\r\n", 1)[0].decode()
        self.asked.append(line)
        _method, target, _version = line.split()
        where, port = target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((where.strip("[]"), int(port)), timeout=5)
        except OSError:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = [self.request, upstream]
            while True:
                ready, _, _ = select.select(ends, [], [], 5)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.request else self.request).sendall(data)


def test_an_https_pdf_url_is_fetched_through_the_outbound_proxy_by_its_checked_address(
    host: tuple[LocalServer, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _seen = host
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(TLS / "name-only-cert.pem", TLS / "name-only-key.pem")  # localhost
    server.server.socket = tls.wrap_socket(server.server.socket, server_side=True)
    asked: list[str] = []
    proxy = socketserver.ThreadingTCPServer(
        ("127.0.0.1", 0), type("Proxy", (_Tunnels,), {"asked": asked})
    )
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.01}).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "name-only-cert.pem"))
    port = server.url.rsplit(":", 1)[1]
    try:
        files = InvoiceFiles(None, allow_private_hosts=["127.0.0.1", "::1"])
        copy = files.copy("INV-1", f"https://localhost:{port}/host.pdf", LIMIT)
    finally:
        proxy.shutdown()
        proxy.server_close()
    # the certificate was checked for the name, the proxy asked for the address checked
    assert copy == PDF + f"localhost:{port}".encode()
    assert asked == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]


def test_an_http_pdf_url_is_fetched_through_the_outbound_proxy_over_a_tunnel_by_name(
    host: tuple[LocalServer, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy asked `GET http://<address>/…` would reach the address, not the site the name
    serves; through a tunnel to the checked address, the request says the name in Host."""
    server, seen = host
    asked: list[str] = []
    proxy = socketserver.ThreadingTCPServer(
        ("127.0.0.1", 0), type("Proxy", (_Tunnels,), {"asked": asked})
    )
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.01}).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    port = server.url.rsplit(":", 1)[1]
    try:
        files = InvoiceFiles(None, allow_private_hosts=["127.0.0.1", "::1"])
        copy = files.copy("INV-1", f"http://localhost:{port}/host.pdf", LIMIT)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert copy == PDF + f"localhost:{port}".encode()
    assert asked == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    assert seen == ["/host.pdf"]  # the path alone, as a site is asked directly


class _RefusesTunnels(socketserver.BaseRequestHandler):
    """Squid as installed: CONNECT only to port 443 (`http_access deny CONNECT !SSL_ports`), so
    a tunnel to port 80 (or any other) is answered 403."""

    answer = b"403 Forbidden"

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        self.request.sendall(b"HTTP/1.1 %b\r\nContent-Length: 0\r\n\r\n" % self.answer)


def test_a_proxy_refusing_the_tunnel_for_an_http_pdf_url_says_what_to_fix(
    host: tuple[LocalServer, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, seen = host
    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusesTunnels)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.01}).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    port = server.url.rsplit(":", 1)[1]
    files = InvoiceFiles(None, allow_private_hosts=["127.0.0.1", "::1"])
    try:
        with pytest.raises(CopyRefused) as refused:
            files.copy("INV-1", f"http://localhost:{port}/host.pdf", LIMIT)
    finally:
        proxy.shutdown()
        proxy.server_close()
    message = refused.value.message
    assert "invoice INV-1" in message
    assert "403 Forbidden" in message  # the proxy's own answer
    assert f"127.0.0.1:{port}" in message  # the tunnel it was asked for
    assert f"allow CONNECT to port {port}" in message and "HTTP_PROXY" in message
    assert "https address" in message and "ledger CSV" in message  # or do without the proxy
    assert not refused.value.later  # the proxy's rule stays until a person changes it
    assert seen == []


@pytest.mark.parametrize(
    ("answer", "says", "later"),
    [
        (b"407 Proxy Authentication Required", "give its user and password in", False),
        (b"502 Bad Gateway", "it is tried again later", True),
        (b"408 Request Timeout", "it is tried again later", True),  # busy or slow: it passes
        (b"429 Too Many Requests", "it is tried again later", True),
    ],
)
def test_a_proxy_asking_a_login_busy_or_not_reaching_the_server_says_so(
    host: tuple[LocalServer, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    answer: bytes,
    says: str,
    later: bool,
) -> None:
    server, _seen = host
    handler = type("Proxy", (_RefusesTunnels,), {"answer": answer})
    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.01}).start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    port = server.url.rsplit(":", 1)[1]
    files = InvoiceFiles(None, allow_private_hosts=["127.0.0.1", "::1"])
    try:
        with pytest.raises(CopyRefused) as refused:
            files.copy("INV-1", f"http://localhost:{port}/host.pdf", LIMIT)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert answer.decode() in refused.value.message and says in refused.value.message
    assert refused.value.later is later


def test_a_pdf_url_that_is_not_the_pdf_itself_or_is_gone_is_refused(
    host: tuple[LocalServer, list[str]],
) -> None:
    server, _seen = host
    files = InvoiceFiles(None, allow_private_hosts=LOCAL)
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
    files = InvoiceFiles(None, allow_private_hosts=LOCAL)
    with pytest.raises(CopyRefused, match=r"is 10 kB, over the 10 kB limit"):
        files.copy("INV-1", f"{server.url}/big.pdf", LIMIT)
    with pytest.raises(CopyRefused, match="over the 10 kB limit; it was not read further"):
        files.copy("INV-1", f"{server.url}/big-chunked.pdf", LIMIT)


class _Trickle(BaseHTTPRequestHandler):
    """A byte every 0.2 s, never slow enough for a read to time out: of the body of /body.pdf,
    of the headers of /headers.pdf."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/headers.pdf":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            dribble = b"X-Padding: " + b"x" * 100
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"%PDF-1.7\n")
            dribble = b"x" * 100
        try:
            for byte in dribble:  # 20 s at most
                time.sleep(0.2)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except OSError:
            return


@pytest.mark.parametrize("path", ["/body.pdf", "/headers.pdf"])
def test_a_pdf_url_that_trickles_is_given_up_at_its_deadline_and_tried_later(path: str) -> None:
    server = LocalServer(_Trickle).start()
    try:
        files = InvoiceFiles(None, allow_private_hosts=LOCAL, deadline_seconds=1)
        began = time.monotonic()
        with pytest.raises(CopyRefused) as slow:
            files.copy("INV-1", f"{server.url}{path}", 1_000_000)
        took = time.monotonic() - began
    finally:
        server.stop()
    assert str(slow.value) == (
        "the copy of invoice INV-1 at its pdf_url could not be fetched: the server took longer "
        "than 1 s to send it; it is tried again later"
    )
    # well before the trickle's 20 s end, however busy the machine: the deadline, not the server,
    # ended the fetch
    assert slow.value.later and took < 15


def test_a_pdf_url_at_a_private_address_is_not_fetched_unless_allowed(
    host: tuple[LocalServer, list[str]],
) -> None:
    server, seen = host
    with pytest.raises(CopyRefused) as refused:
        InvoiceFiles(None).copy("INV-1042", f"{server.url}/INV-1042.pdf", LIMIT)
    assert str(refused.value) == (
        f"the copy of invoice INV-1042 at its pdf_url is not fetched: {server.url}/INV-1042.pdf "
        "is at 127.0.0.1, a loopback address, not on the public internet; give an address on the "
        "public internet in the ledger CSV, or list your own file server's address in "
        "ARBOT_ALLOW_PRIVATE_PDF_HOSTS"
    )
    assert not refused.value.later and seen == []
    files = InvoiceFiles(None, allow_private_hosts=["127.0.0.2", "169.254.0.0/16"])
    for url, kind in [
        ("http://localhost:9/INV-1.pdf", "a loopback address"),
        ("http://[::1]:9/INV-1.pdf", "a loopback address"),
        ("http://[::ffff:127.0.0.1]:9/INV-1.pdf", "a loopback address"),
        ("http://0.0.0.0:9/INV-1.pdf", "an unspecified address"),
        ("http://10.1.2.3:9/INV-1.pdf", "a private address"),
        ("http://192.168.0.7:9/INV-1.pdf", "a private address"),
        ("http://100.100.100.200/INV-1.pdf", "a cloud metadata address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://224.0.0.1:9/INV-1.pdf", "a multicast address"),
        ("http://240.0.0.1:9/INV-1.pdf", "a reserved address"),
    ]:
        with pytest.raises(CopyRefused, match=f"{kind}, not on the public internet") as each:
            files.copy("INV-1", url, LIMIT)
        assert not each.value.later, url


def test_a_redirect_is_followed_only_to_an_allowed_address(
    host: tuple[LocalServer, list[str]],
) -> None:
    internal, seen = host
    target = f"{internal.url}/INV-1042.pdf"

    class Outside(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    outside = LocalServer(Outside, host="127.0.0.2").start()
    try:
        files = InvoiceFiles(None, allow_private_hosts=["127.0.0.2"])
        with pytest.raises(
            CopyRefused, match=f"it redirects to {target}, which is at 127.0.0.1, a loopback"
        ) as refused:
            files.copy("INV-1042", f"{outside.url}/INV-1042.pdf", LIMIT)
        assert not refused.value.later and seen == []  # the internal server was never asked
        both = InvoiceFiles(None, allow_private_hosts=["127.0.0.0/8"])
        assert both.copy("INV-1042", f"{outside.url}/INV-1042.pdf", LIMIT) == PDF
    finally:
        outside.stop()
    files = InvoiceFiles(None, allow_private_hosts=LOCAL)
    with pytest.raises(CopyRefused, match=r"led to file:/+etc/passwd, not an http"):
        files.copy("INV-1", f"{internal.url}/to-file", LIMIT)
    with pytest.raises(CopyRefused, match="more than 5 redirects"):
        files.copy("INV-1", f"{internal.url}/loop", LIMIT)


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
