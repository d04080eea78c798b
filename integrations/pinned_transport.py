"""An httpx transport that reaches a host only at addresses already checked for it
(integrations/public_hosts.py), for a URL that keeps the host's name.

The request keeps the name for everything that is about the name: the Host header, the TLS
server name (SNI) and the certificate check. The connection goes to a checked address, tried
in turn while one refuses: directly, or through the outbound proxy the environment names for
the URL (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY; NO_PROXY matched against the name). Through a
proxy a URL is fetched over a tunnel to the checked address (`CONNECT 203.0.113.7:443`): for
https, TLS still checks the name inside it; for http, the request inside it is plain HTTP, the
name in Host, as a site is asked directly. An http URL is never asked of the proxy as
`GET http://203.0.113.7/…`: a proxy goes by that request line's address (RFC 9112 §3.2.2), so a
site served by name behind a shared address would not answer it. The proxy never resolves the
name itself, so the check holds behind a proxy too."""

from __future__ import annotations

import ssl
import threading
import urllib.request
from collections.abc import Iterable, Iterator, Sequence

import httpcore
import httpx

from integrations.public_hosts import Address

# httpcore's errors as httpx names them, the narrowest first
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx(exc: Exception) -> Exception:
    for theirs, ours in _ERRORS:
        if isinstance(exc, theirs):
            return ours(str(exc))
    return exc


class TunnelRefused(httpx.ProxyError):
    """The outbound proxy answered CONNECT with something other than 2xx: its `status` and
    `answer` ("403 Forbidden"), the `proxy` (its address, no login) and the `target` it was
    asked for ("203.0.113.7:80")."""

    def __init__(self, answer: str, *, proxy: str, target: str) -> None:
        super().__init__(answer)
        first = answer.split(" ", 1)[0]
        self.status = int(first) if first.isdigit() else 0
        self.answer = answer
        self.proxy = proxy
        self.target = target


def proxy_for(url: httpx.URL) -> httpx.URL | None:
    """The outbound proxy the environment names for `url`, by its host name; None: direct."""
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    named = proxies.get(url.scheme) or proxies.get("all")
    return httpx.URL(named) if named else None


class PinnedTransport(httpx.BaseTransport):
    """Sends each request for `name` to one of `addresses` (checked for it), in turn while a
    connection is refused, directly or through `proxy`; `tls` checks certificates."""

    def __init__(
        self,
        name: str,
        addresses: Sequence[Address],
        *,
        proxy: httpx.URL | None,
        tls: ssl.SSLContext,
    ) -> None:
        if not addresses:
            raise ValueError(f"no address checked for {name}")
        # the address as a URL holds it: IPv6 in brackets, for a proxy's CONNECT line
        self.hosts = [f"[{a}]" if a.version == 6 and proxy else str(a) for a in addresses]
        self.proxy = str(proxy.copy_with(username=None, password=None)) if proxy else ""
        backend = _NamedTLS(name, self.hosts)
        self.pool: httpcore.ConnectionPool
        if proxy is None:
            self.pool = httpcore.ConnectionPool(ssl_context=tls, network_backend=backend)
        elif proxy.scheme in ("http", "https"):
            self.pool = _TunnelsOnly(
                proxy_url=httpcore.URL(
                    scheme=proxy.raw_scheme,
                    host=proxy.raw_host,
                    port=proxy.port,
                    target=proxy.raw_path,
                ),
                proxy_auth=(proxy.username, proxy.password) if proxy.username else None,
                ssl_context=tls,
                network_backend=backend,
            )
        else:
            raise httpx.UnsupportedProtocol(
                f"the outbound proxy {proxy.copy_with(username=None, password=None)} is a "
                f"{proxy.scheme} proxy; set HTTPS_PROXY, HTTP_PROXY or ALL_PROXY to an http or "
                "https proxy"
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        for n, host in enumerate(self.hosts, 1):
            at = httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=host.encode("ascii"),
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,  # Host: the name
                content=request.stream,
                extensions=request.extensions,
            )
            try:
                response = self.pool.handle_request(at)
            except (httpcore.ConnectError, httpcore.ProxyError) as exc:
                if n < len(self.hosts):
                    continue
                if isinstance(exc, httpcore.ProxyError):  # CONNECT answered, not with 2xx
                    port = request.url.port or (443 if request.url.scheme == "https" else 80)
                    raise TunnelRefused(
                        str(exc), proxy=self.proxy, target=f"{host}:{port}"
                    ) from exc
                raise _as_httpx(exc) from exc
            except Exception as exc:
                raise _as_httpx(exc) from exc
            assert isinstance(response.stream, Iterable)
            return httpx.Response(
                status_code=response.status,
                headers=response.headers,
                stream=_Body(response.stream),
                extensions=response.extensions,
            )
        raise AssertionError("a transport has at least one address")

    def close(self) -> None:
        self.pool.close()


class _TunnelsOnly(httpcore.HTTPProxy):
    """An outbound proxy asked for a tunnel (CONNECT) for http URLs too, in place of the
    absolute-form request (`GET http://203.0.113.7/…`) httpcore sends for them."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.ConnectionInterface:
        if origin.scheme != b"http":
            return super().create_connection(origin)
        return _PlainTunnel(
            self._proxy_url.origin,
            httpcore.HTTPConnection(
                origin=self._proxy_url.origin,
                keepalive_expiry=self._keepalive_expiry,
                network_backend=self._network_backend,
                ssl_context=self._proxy_ssl_context,
            ),
            origin,
            self._proxy_headers,
            self._keepalive_expiry,
        )


class _PlainTunnel(httpcore.ConnectionInterface):
    """A tunnel through the proxy to `origin` (a checked address), plain HTTP inside it."""

    def __init__(
        self,
        proxy_origin: httpcore.Origin,
        proxy: httpcore.ConnectionInterface,
        origin: httpcore.Origin,
        proxy_headers: list[tuple[bytes, bytes]],
        keepalive_expiry: float | None,
    ) -> None:
        self.proxy_origin = proxy_origin
        self.connection = proxy
        self.origin = origin
        self.proxy_headers = proxy_headers
        self.keepalive_expiry = keepalive_expiry
        self.connected = False
        self.lock = threading.Lock()

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        with self.lock:
            if not self.connected:
                target = b"%b:%d" % (self.origin.host, self.origin.port)
                connect = httpcore.Request(
                    method=b"CONNECT",
                    url=httpcore.URL(
                        scheme=self.proxy_origin.scheme,
                        host=self.proxy_origin.host,
                        port=self.proxy_origin.port,
                        target=target,
                    ),
                    headers=[(b"Host", target), (b"Accept", b"*/*"), *self.proxy_headers],
                    extensions=request.extensions,  # its timeouts
                )
                answer = self.connection.handle_request(connect)
                if not 200 <= answer.status <= 299:
                    reason = answer.extensions.get("reason_phrase", b"").decode("ascii", "ignore")
                    self.connection.close()
                    raise httpcore.ProxyError(f"{answer.status} {reason}")
                self.connection = httpcore.HTTP11Connection(
                    origin=self.origin,
                    stream=answer.extensions["network_stream"],
                    keepalive_expiry=self.keepalive_expiry,
                )
                self.connected = True
        return self.connection.handle_request(request)

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin

    def close(self) -> None:
        self.connection.close()

    def info(self) -> str:
        return self.connection.info()

    def is_available(self) -> bool:
        return self.connection.is_available()

    def has_expired(self) -> bool:
        return self.connection.has_expired()

    def is_idle(self) -> bool:
        return self.connection.is_idle()

    def is_closed(self) -> bool:
        return self.connection.is_closed()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.stream
        except Exception as exc:
            raise _as_httpx(exc) from exc

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()


class _NamedTLS(httpcore.NetworkBackend):
    """Connects as httpcore does by default, except that TLS with one of `hosts` (the
    server's, directly or inside a proxy's tunnel) names `name` and checks its certificate."""

    def __init__(self, name: str, hosts: Iterable[str]) -> None:
        self.name = name
        self.hosts = set(hosts)
        self.backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _NamedTLSStream(stream, self)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("a checked address is never a unix socket")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _NamedTLSStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, backend: _NamedTLS) -> None:
        self.stream = stream
        self.backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, timeout)

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        if server_hostname in self.backend.hosts:  # not a proxy's own TLS
            server_hostname = self.backend.name
        secured = self.stream.start_tls(ssl_context, server_hostname, timeout)
        return _NamedTLSStream(secured, self.backend)

    def get_extra_info(self, info: str) -> object:
        return self.stream.get_extra_info(info)
