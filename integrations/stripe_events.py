"""Stripe webhook events: verify `Stripe-Signature` with the stripe library (its default five
minute tolerance), then read the few fields arbot acts on into plain values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe

from bot.core.money import minor_units


class InvalidStripeEvent(Exception):
    """A body Stripe did not sign with our secret, a stale one, or one that is not an event."""


@dataclass(frozen=True, slots=True)
class StripeEventIn:
    id: str
    type: str
    object: dict[str, Any]
    livemode: bool


def verify(payload: bytes, signature: str | None, secret: str) -> StripeEventIn:
    if not secret:
        raise InvalidStripeEvent("STRIPE_WEBHOOK_SECRET is not set")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidStripeEvent(str(exc)) from exc
    try:
        body = json.loads(payload)
        return StripeEventIn(
            id=str(body["id"]),
            type=str(body["type"]),
            object=dict(body["data"]["object"]),
            livemode=bool(body.get("livemode", False)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidStripeEvent(f"not a Stripe event: {exc}") from exc


def amount_of(minor: object, currency: str) -> Decimal:
    """Stripe's integer minor units back into a Decimal in the currency's own units."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise ValueError(f"amount {minor!r} is not an integer count of minor units")
    return Decimal(minor).scaleb(-minor_units(currency.upper()))


def invoice_ids(metadata: object) -> list[int]:
    """The invoice ids arbot put in a payment link's metadata (`arbot_invoice_ids`)."""
    if not isinstance(metadata, dict):
        return []
    raw = str(metadata.get("arbot_invoice_ids") or "")
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]
