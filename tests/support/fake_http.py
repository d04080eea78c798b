"""The plumbing the local fakes of HTTP APIs share: a threaded server on a free loopback port."""

from __future__ import annotations

import functools
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import certifi
import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())  # what httpx.Client() makes


def local_client(**options: Any) -> httpx.Client:
    """`httpx.Client(**options)` for the local fakes and the served app, all sharing one SSL
    context: each new one loads certifi's CA bundle (about 40 ms), which plain HTTP never uses."""
    return httpx.Client(verify=_tls(), **options)


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LocalServer:
    """Base of the fakes: `start()`, `stop()` and `url` on a free loopback port (of `host`, any
    address in 127.0.0.0/8)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer((host, 0), handler)
        # serve_forever checks for shutdown() every poll_interval: its default (0.5 s) made
        # every test that stops a fake wait half a second for nothing.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"
