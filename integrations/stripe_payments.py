"""What Stripe holds on a payment, read through the stripe library (STRIPE_API_BASE points it at a
local fake in tests): the PaymentIntent behind a charge, its metadata, and the Payment Links whose
Checkout Sessions made it.

The Stripe webhook asks this while it waits for its answer, so each call is short: a few seconds
and no retry. A call that fails raises; the webhook then treats the payment as possibly arbot's
(Stripe tries the event again)."""

from __future__ import annotations

import stripe
from stripe import StripeClient

TIMEOUT_SECONDS = 5.0


class StripePaymentReader:
    def __init__(self, api_key: str, api_base: str) -> None:
        self.client = StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.new_default_http_client(timeout=TIMEOUT_SECONDS),
        )

    def payment_intent_of_charge(self, charge_id: str) -> str | None:
        intent = self.client.v1.charges.retrieve(charge_id).to_dict().get("payment_intent")
        return str(intent) if intent else None

    def payment_intent_metadata(self, payment_intent_id: str) -> dict[str, str]:
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id).to_dict()
        metadata = intent.get("metadata") or {}
        return {str(key): str(value) for key, value in metadata.items()}

    def payment_links_of(self, payment_intent_id: str) -> list[str]:
        sessions = self.client.v1.checkout.sessions.list(
            params={"payment_intent": payment_intent_id}
        )
        found = [session.get("payment_link") for session in sessions.to_dict().get("data") or []]
        return [str(link) for link in found if link]
