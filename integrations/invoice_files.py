"""A CSV ledger's invoice copies: fetched from the row's `pdf_url` (http or https) or read from
the folder ARBOT_INVOICE_PDF_DIR, where each invoice's copy is `<invoice number>.pdf`.

A URL is fetched with httpx, redirects followed here, at most MAX_REDIRECTS, and only to http(s).
Before each hop its host is resolved and every address it has must be on the public internet
(integrations/public_hosts.py), unless listed in ARBOT_ALLOW_PRIVATE_PDF_HOSTS; the request then
goes to that vetted address (the name kept for the Host header and TLS), so a link or a redirect
in a ledger cannot make arbot fetch an internal document and mail it to a customer. Behind an
outbound proxy (HTTPS_PROXY and the like) the proxy too is asked for the vetted address, never
the name (integrations/pinned_transport.py). The body is
read as a stream that stops at the size the caller allows, and taken only when it answers 200
with `Content-Type: application/pdf` and the body is a PDF. The whole fetch, redirects included,
has a deadline (FETCH_SECONDS): when it passes the connection is shut down, whatever it waits for
(headers or body, however steadily they trickle), and the copy is tried again later, so a send is
never held up by a slow server.

A folder's file is found only by a number that is a plain file name (no `/`, `\\`, leading `.`):
the path, symlinks resolved, must lie inside the folder, so no invoice number reaches another
file."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack, suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx

from integrations.base.documents import PDF_TYPE, CopyRefused, checked_pdf, megabytes
from integrations.pinned_transport import PinnedTransport, TunnelRefused, proxy_for
from integrations.public_hosts import METADATA_KIND, NotPublic, allowed_networks, resolve
from integrations.tls import verified_tls

TIMEOUT_SECONDS = 30  # for each connect and read
FETCH_SECONDS = 60  # for the whole fetch
MAX_REDIRECTS = 5


class InvoiceFiles:
    """FileCopies over HTTP(S) and a folder. `allow_private_hosts`: addresses or networks
    (ARBOT_ALLOW_PRIVATE_PDF_HOSTS) a pdf_url may reach though they are not public;
    `deadline_seconds`: how long a whole fetch may take."""

    def __init__(
        self,
        folder: Path | None,
        *,
        allow_private_hosts: Iterable[str] = (),
        deadline_seconds: float = FETCH_SECONDS,
    ) -> None:
        self.folder = folder
        self.allowed = allowed_networks(allow_private_hosts)
        self.deadline_seconds = deadline_seconds

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """Certificates checked as httpx checks them (SSL_CERT_FILE or SSL_CERT_DIR if set)."""
        return verified_tls()

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
        slow = CopyRefused(
            f"{what} could not be fetched: the server took longer than "
            f"{self.deadline_seconds:g} s to send it; it is tried again later",
            later=True,
        )
        deadline = time.monotonic() + self.deadline_seconds
        watchdog = _Watchdog(self.deadline_seconds)
        try:
            with ExitStack() as stack:
                stack.callback(watchdog.cancel)
                response = self._follow(stack, what, httpx.URL(url), deadline, watchdog)
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
                for chunk in response.iter_bytes():  # as each read brings it
                    if watchdog.expired:
                        raise slow
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise CopyRefused(
                            f"{what} is over the {megabytes(max_bytes)} limit; it was not read "
                            "further",
                            too_large=True,
                        )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise CopyRefused(
                f"{what} could not be fetched ({exc}): correct the address in the ledger CSV"
            ) from None
        except TunnelRefused as exc:
            raise _tunnel_refused(what, url, exc) from None
        except httpx.HTTPError as exc:
            if watchdog.expired or time.monotonic() >= deadline:
                raise slow from None
            raise CopyRefused(
                f"{what} could not be fetched ({exc.__class__.__name__}); it is tried again later",
                later=True,
            ) from None
        if watchdog.expired:  # a body that ends where the connection does was cut short
            raise slow
        return checked_pdf(bytes(data), what, max_bytes)

    def _follow(
        self,
        stack: ExitStack,
        what: str,
        url: httpx.URL,
        deadline: float,
        watchdog: _Watchdog,
    ) -> httpx.Response:
        """The response at the end of `url`'s redirects, each hop's address vetted first, each
        connect and read waiting no later than `deadline`, its connection shut by `watchdog`."""
        for hop in range(MAX_REDIRECTS + 1):
            left = max(deadline - time.monotonic(), 0.001)
            if url.scheme not in ("http", "https"):
                raise CopyRefused(
                    f"{what} led to {url}, not an http(s) address; correct it in the ledger CSV"
                )
            where = f"{url} is at" if hop == 0 else f"it redirects to {url}, which is at"
            response = self._get(stack, what, url, where, min(TIMEOUT_SECONDS, left), watchdog)
            stack.callback(response.close)
            if not response.is_redirect:
                return response
            response.close()
            url = url.join(response.headers["Location"])
        raise CopyRefused(
            f"{what} led through more than {MAX_REDIRECTS} redirects; correct the address in "
            "the ledger CSV"
        )

    def _get(
        self,
        stack: ExitStack,
        what: str,
        url: httpx.URL,
        where: str,
        timeout: float,
        watchdog: _Watchdog,
    ) -> httpx.Response:
        """GET `url` (streamed) from an address its host resolves to, once every address it has
        is vetted: a connection refused at one is tried at the next, as a browser would; through
        the environment's outbound proxy for `url`, if any, still to a vetted address (a client
        of its own, closed with `stack`)."""
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = resolve(host, port, self.allowed)
        except NotPublic as exc:
            hint = (
                ""
                if exc.kind == METADATA_KIND
                else ", or list your own file server's address in ARBOT_ALLOW_PRIVATE_PDF_HOSTS"
            )
            raise CopyRefused(
                f"{what} is not fetched: {where} {exc.address}, {exc.kind}, not on the public "
                f"internet; give an address on the public internet in the ledger CSV{hint}"
            ) from None
        except (OSError, UnicodeError) as exc:
            raise CopyRefused(
                f"{what} could not be fetched: {host} was not found ({exc}); it is tried again "
                "later",
                later=True,
            ) from None
        try:
            transport = PinnedTransport(host, addresses, proxy=proxy_for(url), tls=self.tls)
        except httpx.UnsupportedProtocol as exc:
            raise CopyRefused(f"{what} could not be fetched: {exc}") from None
        http = stack.enter_context(httpx.Client(transport=transport, timeout=TIMEOUT_SECONDS))
        request = http.build_request(
            "GET",
            url,
            headers={"Accept": PDF_TYPE},
            extensions={"trace": watchdog.trace},
            timeout=timeout,
        )
        return http.send(request, stream=True, follow_redirects=False)

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


def _tunnel_refused(what: str, url: str, exc: TunnelRefused) -> CopyRefused:
    """The outbound proxy would not open a tunnel to the checked address. Refused (403 and the
    like: Squid, as installed, allows CONNECT only to port 443), or asking for a login (407): a
    rule at the proxy or its setting, which a person changes, so it is said what to change. The
    proxy busy or slow (408, 429) or failing to reach the server (5xx): tried again later, its
    answer shown."""
    port = exc.target.rsplit(":", 1)[1]
    http = url.lower().startswith("http://")
    setting = "HTTP_PROXY or ALL_PROXY" if http else "HTTPS_PROXY or ALL_PROXY"
    said = (
        f"the outbound proxy {exc.proxy} ({setting}) answered {exc.answer} to CONNECT {exc.target}"
    )
    if exc.status >= 500 or exc.status in (0, 408, 429):
        return CopyRefused(
            f"{what} could not be fetched: {said}; it is tried again later", later=True
        )
    if exc.status == 407:
        return CopyRefused(
            f"{what} could not be fetched: {said}, it asks for a login: give its user and "
            f"password in {setting} (http://user:password@proxy:port)"
        )
    squid = "" if port == "443" else f" (Squid allows it only to 443 unless SSL_ports lists {port})"
    instead = ", or give an https address in the ledger CSV" if http else ""
    return CopyRefused(
        f"{what} could not be fetched: {said}; allow CONNECT to port {port} at that proxy"
        f"{squid}{instead}"
    )


class _Watchdog:
    """Shuts down the connections a fetch opens once `seconds` have passed, so that a read
    waiting on a server that trickles (headers or body) ends then, not at its own timeout."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's `trace` request extension: each new connection's socket is noted."""
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read waiting on it, in any thread
