"""The day a Stripe payment, or its refund, was received is the business's day (ARBOT_TIMEZONE),
as a ledger's or a bank file's payment is: the weekly review's cash collected and the learning
loop's "paid within days of a touch" both count by it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Payment
from bot.core.runtime import Runtime
from bot.payments.flows import receive_stripe_event
from bot.payments.stripe_events import StripeResult
from integrations.base.payments import StripeEventIn
from tests.bot.payments.test_stripe_events import loaded
from tests.support import stripe_requests as sr

# 22:30 on Monday the 16th in New York (the tests' ARBOT_TIMEZONE), already the 17th in UTC
EVENING = datetime(2026, 3, 17, 2, 30, tzinfo=UTC)


def receive(runtime: Runtime, body: bytes) -> StripeResult:
    event = json.loads(body)
    verified = StripeEventIn(
        id=event["id"],
        type=event["type"],
        object=event["data"]["object"],
        livemode=False,
        created=runtime.clock.now(),
    )
    return receive_stripe_event(runtime, verified, slack=None, links=None)


def test_a_payment_and_its_refund_late_in_the_evening_are_received_on_the_businesss_day(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    ids = loaded(runtime, tmp_path)
    clock.set(EVENING)
    paid = sr.checkout_completed(120000, [ids["INV-1"]], "pi_evening")
    paid["created"] = int(EVENING.timestamp())
    assert receive(runtime, sr.event("checkout.session.completed", paid)).status == "applied"
    clock.set(EVENING + timedelta(minutes=30))
    refunded = sr.charge_refunded("pi_evening", 120000, 20000)
    assert receive(runtime, sr.event("charge.refunded", refunded)).status == "applied"

    with runtime.sessions() as session:
        received = session.execute(
            select(Payment.amount, Payment.received_on).order_by(Payment.id)
        ).all()

    assert [tuple(r) for r in received] == [
        (Decimal("1200.00"), date(2026, 3, 16)),
        (Decimal("-200.00"), date(2026, 3, 16)),
    ]
