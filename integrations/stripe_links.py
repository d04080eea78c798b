"""Stripe Payment Links through the stripe library (STRIPE_API_BASE points it at a local fake in
tests). Each call carries an Idempotency-Key, so a retry never creates a second link."""

from __future__ import annotations

from stripe import StripeClient

from integrations.base.payments import MAIN_BOOKS, WORKSPACE_KEY


class StripeLinks:
    """`books`: the workspace the links are for (integrations.base.payments.books_of). Its links
    say so in their metadata, and an installed workspace's idempotency keys name it: on a Stripe
    account another workspace also uses, the same invoice ids never return that one's link."""

    def __init__(self, api_key: str, api_base: str, books: str = MAIN_BOOKS) -> None:
        self.client = StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=2)
        self.books = books

    def create(
        self, key: str, currency: str, amount_minor: int, description: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        metadata = {**metadata, WORKSPACE_KEY: self.books}
        if self.books != MAIN_BOOKS:  # the main workspace's keys stay those it always used
            key = f"{self.books}-{key}"
        price = self.client.v1.prices.create(
            params={
                "currency": currency.lower(),
                "unit_amount": amount_minor,
                "product_data": {"name": description[:250]},
                "metadata": metadata,
            },
            options={"idempotency_key": f"arbot-price-{key}"},
        )
        link = self.client.v1.payment_links.create(
            params={
                "line_items": [{"price": price.id, "quantity": 1}],
                "metadata": metadata,
                # The PaymentIntent carries the invoice ids too, so `payment_intent.succeeded`
                # finds its invoices as `checkout.session.completed` does.
                "payment_intent_data": {"metadata": metadata},
                # One payment per link: a paid link cannot be paid again (RULES D4).
                "restrictions": {"completed_sessions": {"limit": 1}},
            },
            options={"idempotency_key": f"arbot-link-{key}"},
        )
        return str(link.url), str(link.id)

    def deactivate(self, provider_id: str) -> None:
        self.client.v1.payment_links.update(provider_id, params={"active": False})


def links_from(api_key: str | None, api_base: str) -> StripeLinks | None:
    """Stripe payment links when STRIPE_API_KEY is set; otherwise none."""
    return StripeLinks(api_key, api_base) if api_key else None
