"""Stripe webhook events: verify `Stripe-Signature` with the stripe library (its default five
minute tolerance), then read the few fields arbot acts on into plain values."""

from __future__ import annotations

import json

import stripe

from integrations.base.payments import StripeEventIn


class InvalidStripeEvent(Exception):
    """A body Stripe did not sign with our secret, a stale one, or one that is not an event."""


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
