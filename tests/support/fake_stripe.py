"""A local stand-in for the Stripe endpoints arbot calls (prices, payment links, the account
`arbot doctor` reads, and the charges, PaymentIntents and Checkout Sessions the webhook reads),
honouring Idempotency-Key the way Stripe does: the same key returns the same object."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.support.fake_http import JsonHandler, LocalServer


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


class FakeStripe(LocalServer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []  # path, params, key
        self.by_key: dict[str, dict[str, Any]] = {}
        self.fail_with: int | None = None
        self.updated: dict[str, dict[str, Any]] = {}  # payment link id -> the update's params
        self.lock = threading.Lock()
        # What GET /v1/payment_intents/<id>, /v1/charges/<id> and /v1/checkout/sessions answer
        # (sessions filtered by `payment_intent`); an id not here is Stripe's 404.
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.sessions: list[dict[str, Any]] = []
        self.reads: list[str] = []  # the path and query of each of those GETs
        # Told "Stripe POST <path>" (or GET) as each call arrives, before it is answered.
        self.on_call: Callable[[str], None] | None = None
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != "Bearer sk_test_arbot":
                    return self.answer(
                        401,
                        {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
                    )
                if self.path != "/v1/account":
                    return self.read()
                return self.answer(
                    200,
                    {
                        "id": "acct_1ArbotTest",
                        "object": "account",
                        "charges_enabled": True,
                        "country": "US",
                        "default_currency": "usd",
                        "settings": {"dashboard": {"display_name": "Brightwater Supply"}},
                    },
                )

            def read(self) -> None:
                """A charge, a PaymentIntent or the Checkout Sessions of one, as stored."""
                url = urlsplit(self.path)
                if fake.on_call is not None:
                    fake.on_call(f"Stripe GET {url.path}")
                with fake.lock:
                    fake.reads.append(self.path)
                    if fake.fail_with:
                        return self.answer(
                            fake.fail_with,
                            {"error": {"type": "api_error", "message": "Stripe is down"}},
                        )
                    kind, _, object_id = url.path.removeprefix("/v1/").partition("/")
                    stored = {"payment_intents": fake.payment_intents, "charges": fake.charges}
                    if kind in stored and object_id in stored[kind]:
                        return self.answer(200, stored[kind][object_id])
                    if url.path == "/v1/checkout/sessions":
                        wanted = parse_qs(url.query).get("payment_intent", [None])[0]
                        found = [s for s in fake.sessions if s.get("payment_intent") == wanted]
                        return self.answer(
                            200,
                            {
                                "object": "list",
                                "url": "/v1/checkout/sessions",
                                "has_more": False,
                                "data": found,
                            },
                        )
                    return self.answer(
                        404,
                        {
                            "error": {
                                "type": "invalid_request_error",
                                "code": "resource_missing",
                                "message": f"No such object: '{object_id}'",
                            }
                        },
                    )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                params = _nest(parse_qsl(self.rfile.read(length).decode()))
                key = self.headers.get("Idempotency-Key")
                if fake.on_call is not None:
                    fake.on_call(f"Stripe POST {self.path}")
                with fake.lock:
                    fake.calls.append((self.path, params, key))
                    if fake.fail_with:
                        return self.answer(
                            fake.fail_with,
                            {"error": {"type": "api_error", "message": "Stripe is down"}},
                        )
                    if self.headers.get("Authorization") != "Bearer sk_test_arbot":
                        return self.answer(
                            401,
                            {
                                "error": {
                                    "type": "invalid_request_error",
                                    "message": "Invalid API Key",
                                }
                            },
                        )
                    if key and key in fake.by_key:
                        return self.answer(200, fake.by_key[key])
                    if self.path.startswith("/v1/payment_links/"):  # an update: active=false
                        link_id = self.path.rsplit("/", 1)[1]
                        fake.updated[link_id] = params
                        return self.answer(
                            200,
                            {
                                "id": link_id,
                                "object": "payment_link",
                                "active": params.get("active") != "false",
                            },
                        )
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
                        return self.answer(
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
                return self.answer(200, body)

        super().__init__(Handler)

    def created(self, path: str) -> list[dict[str, Any]]:
        return [params for p, params, _ in self.calls if p == path]
