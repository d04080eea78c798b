"""POST /webhooks/stripe: a payment, refund or card dispute, signed by Stripe.

A body that fails the signature is refused (400). A signed event arbot cannot read is answered
200 "ignored" with why, and logged: a failure would only make Stripe retry it for three days. A
refund or card dispute that came before its payment is answered 503 "retry": nothing is kept, and
Stripe's next try finds the payment (bot/payments/stripe_events.py), unless Stripe's API shows the
charge was made outside arbot's payment links: that one is answered 200 "ignored" at once
(bot/payments/stripe_charges.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.payments.flows import receive_stripe_event
from integrations.base.payments import PaymentLinks, StripePayments
from integrations.stripe_events import InvalidStripeEvent, UnreadableStripeEvent, verify

log = logging.getLogger(__name__)


def endpoint(
    runtime: Runtime,
    slack: SlackOut | None,
    links: PaymentLinks | None,
    stripe_payments: StripePayments | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    async def stripe(request: Request) -> Response:
        secret = runtime.settings.stripe_webhook_secret
        body = await request.body()
        try:
            event = await run_in_threadpool(
                verify,
                body,
                request.headers.get("Stripe-Signature"),
                secret.get_secret_value() if secret else "",
            )
        except InvalidStripeEvent as exc:
            log.warning("Stripe webhook refused: %s", exc)
            return PlainTextResponse("invalid signature", status_code=400)
        except UnreadableStripeEvent as exc:
            log.warning("Stripe event ignored: %s", exc)
            return JSONResponse({"status": "ignored", "detail": str(exc)})
        result = await run_in_threadpool(
            receive_stripe_event, runtime, event, slack=slack, links=links, stripe=stripe_payments
        )
        log.info("Stripe event %s %s: %s", event.id, result.status, result.detail)
        status_code = 503 if result.status == "retry" else 200
        return JSONResponse(
            {"status": result.status, "detail": result.detail}, status_code=status_code
        )

    return stripe
