"""Stripe webhook events shaped like Stripe's own, signed the way Stripe signs them
(`Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from itertools import count
from typing import Any

WEBHOOK_SECRET = "whsec_test_arbot"
_ids = count(1)


def signature(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_test_{next(_ids):06d}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": 1773669600,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
            "data": {"object": obj},
        }
    ).encode()


def checkout_completed(
    amount_minor: int,
    invoice_ids: list[int],
    payment_intent: str = "pi_test_1",
    currency: str = "usd",
    payment_link: str | None = "plink_test_1",
    metadata: bool = True,
) -> dict[str, Any]:
    return {
        "id": f"cs_test_{payment_intent}",
        "object": "checkout.session",
        "amount_subtotal": amount_minor,
        "amount_total": amount_minor,
        "created": 1773669600,
        "currency": currency,
        "customer_details": {"email": "ap@ridgeline.example", "name": "Maria Garcia"},
        "livemode": False,
        "metadata": {"arbot_invoice_ids": ",".join(map(str, invoice_ids))} if metadata else {},
        "mode": "payment",
        "payment_intent": payment_intent,
        "payment_link": payment_link,
        "payment_status": "paid",
        "status": "complete",
    }


def payment_intent(
    amount_minor: int, invoice_ids: list[int], pi: str = "pi_test_1"
) -> dict[str, Any]:
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": amount_minor,
        "amount_received": amount_minor,
        "created": 1773669600,
        "currency": "usd",
        "latest_charge": f"ch_{pi}",
        "metadata": {"arbot_invoice_ids": ",".join(map(str, invoice_ids))},
        "status": "succeeded",
    }


def charge_refunded(pi: str, amount_minor: int, refunded_minor: int) -> dict[str, Any]:
    return {
        "id": f"ch_{pi}",
        "object": "charge",
        "amount": amount_minor,
        "amount_captured": amount_minor,
        "amount_refunded": refunded_minor,
        "currency": "usd",
        "payment_intent": pi,
        "refunded": refunded_minor == amount_minor,
        "status": "succeeded",
    }


def dispute_created(pi: str, amount_minor: int) -> dict[str, Any]:
    return {
        "id": f"dp_{pi}",
        "object": "dispute",
        "amount": amount_minor,
        "charge": f"ch_{pi}",
        "currency": "usd",
        "payment_intent": pi,
        "reason": "fraudulent",
        "status": "needs_response",
    }
