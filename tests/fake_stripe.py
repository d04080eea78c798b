"""A local stand-in for the two Stripe endpoints arbot calls (prices, payment links), honouring
Idempotency-Key the way Stripe does: the same key returns the same object."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (a[b][0][c]=v) back into a dict."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []  # path, params, key
        self.by_key: dict[str, dict[str, Any]] = {}
        self.fail_with: int | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                params = _nest(parse_qsl(self.rfile.read(length).decode()))
                key = self.headers.get("Idempotency-Key")
                with fake.lock:
                    fake.calls.append((self.path, params, key))
                    if fake.fail_with:
                        return self._answer(
                            fake.fail_with,
                            {"error": {"type": "api_error", "message": "Stripe is down"}},
                        )
                    if self.headers.get("Authorization") != "Bearer sk_test_arbot":
                        return self._answer(
                            401,
                            {
                                "error": {
                                    "type": "invalid_request_error",
                                    "message": "Invalid API Key",
                                }
                            },
                        )
                    if key and key in fake.by_key:
                        return self._answer(200, fake.by_key[key])
                    n = len(fake.by_key) + 1
                    if self.path == "/v1/prices":
                        body = {
                            "id": f"price_{n}",
                            "object": "price",
                            "currency": params["currency"],
                            "unit_amount": int(params["unit_amount"]),
                        }
                    elif self.path == "/v1/payment_links":
                        body = {
                            "id": f"plink_{n}",
                            "object": "payment_link",
                            "active": True,
                            "url": f"https://buy.stripe.test/plink_{n}",
                            "metadata": params.get("metadata", {}),
                        }
                    else:
                        return self._answer(
                            404,
                            {
                                "error": {
                                    "type": "invalid_request_error",
                                    "message": "Unrecognized request URL",
                                }
                            },
                        )
                    if key:
                        fake.by_key[key] = body
                return self._answer(200, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_test")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def created(self, path: str) -> list[dict[str, Any]]:
        return [params for p, params, _ in self.calls if p == path]
