"""POST /webhooks/stripe with a refund or a card dispute that comes before its payment (Stripe
keeps no order, RULES D4), through the real ASGI app: nothing is kept and Stripe is asked to try
again, so its retry after the payment does what it says and a person hears of it; an event still
unmatched once Stripe is about to stop trying goes to the finance channel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, Event, Invoice, Payment, StripeEvent
from bot.core.runtime import Runtime
from bot.payments.stripe_events import TELL_AFTER
from tests.support import stripe_requests as sr

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

# when Stripe made the event: tests/support/stripe_requests.py gives every event the same one
CREATED = datetime.fromtimestamp(json.loads(sr.event("any", {}))["created"], UTC)


@pytest.fixture
def stripe_app(rt: Runtime, app: httpx.Client) -> httpx.Client:
    """The webhooks' deployment (tests/handlers/webhooks/conftest.py) with Stripe's secret set."""
    rt.settings.stripe_webhook_secret = SecretStr(sr.WEBHOOK_SECRET)
    return app


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sr.signature(body)},
    )


def invoice_of(rt: Runtime, number: str = "INV-1001") -> Invoice:
    with rt.sessions() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == number)).one()
        session.expunge(invoice)
        return invoice


def stored(rt: Runtime) -> tuple[Any, ...]:
    with rt.sessions() as session:
        return (
            session.execute(select(Invoice.id, Invoice.balance, Invoice.status)).all(),
            session.scalar(select(func.count()).select_from(Payment)),
            session.scalar(select(func.count()).select_from(Event)),
            session.scalars(select(StripeEvent.id)).all(),
        )


def paid(rt: Runtime, payment_intent: str) -> bytes:
    """INV-1001 (1,200.00) paid in full by the Stripe link."""
    obj = sr.checkout_completed(120000, [invoice_of(rt).id], payment_intent)
    return sr.event("checkout.session.completed", obj)


def escalation_of(rt: Runtime) -> Escalation:
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def test_a_refund_before_its_payment_is_retried_then_reopens_the_invoice_and_tells_a_person(
    rt: Runtime, stripe_app: httpx.Client, slack_api: Any
) -> None:
    refund = sr.event("charge.refunded", sr.charge_refunded("pi_early", 120000, 120000), "evt_r")
    before = stored(rt)

    early = post(stripe_app, refund)

    assert (early.status_code, early.json()["status"]) == (503, "retry"), early.text
    assert stored(rt) == before  # the event id is not kept: Stripe's retry is new
    assert post(stripe_app, paid(rt, "pi_early")).json()["status"] == "applied"
    assert invoice_of(rt).status == "paid"

    retried = post(stripe_app, refund)  # Stripe's next try, the same event

    assert (retried.status_code, retried.json()["status"]) == (200, "applied"), retried.text
    invoice = invoice_of(rt)
    assert (invoice.status, invoice.balance) == ("open", Decimal("1200.00"))
    # no escalation was open: one is opened, and posted for the owner
    escalation = escalation_of(rt)
    assert escalation.reason == "payment_refunded"
    assert "INV-1001 open again" in (escalation.detail or "")
    assert escalation.slack_channel == "C0ESCALATE" and escalation.slack_thread_ts
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert "<@U07DANA01>" in json.dumps(parent["blocks"])
    assert "a refund reopened invoices" in json.dumps(parent["blocks"])  # why, in words
    assert post(stripe_app, refund).json()["status"] == "duplicate"


def test_a_card_dispute_before_its_payment_is_retried_then_escalated(
    rt: Runtime, stripe_app: httpx.Client
) -> None:
    dispute = sr.event("charge.dispute.created", sr.dispute_created("pi_early", 120000), "evt_d")
    before = stored(rt)

    early = post(stripe_app, dispute)

    assert (early.status_code, early.json()["status"]) == (503, "retry"), early.text
    assert stored(rt) == before
    assert post(stripe_app, paid(rt, "pi_early")).json()["status"] == "applied"

    retried = post(stripe_app, dispute)

    assert (retried.status_code, retried.json()["status"]) == (200, "applied"), retried.text
    escalation = escalation_of(rt)
    assert escalation.reason == "card_dispute" and escalation.slack_thread_ts


@pytest.mark.parametrize(
    "event",
    [
        sr.event("charge.refunded", sr.charge_refunded("pi_never", 50000, 50000), "evt_late_r"),
        sr.event("charge.dispute.created", sr.dispute_created("pi_never", 50000), "evt_late_d"),
    ],
    ids=["refund", "dispute"],
)
def test_an_event_whose_payment_never_came_goes_to_the_finance_channel_before_stripe_stops(
    rt: Runtime, stripe_app: httpx.Client, slack_api: Any, clock: FixedClock, event: bytes
) -> None:
    clock.set(CREATED + TELL_AFTER)

    answer = post(stripe_app, event)

    assert (answer.status_code, answer.json()["status"]) == (200, "unmatched"), answer.text
    told = [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]
    assert any("pi_never" in c["text"] and "never recorded" in c["text"] for c in told)
    # kept as handled: Stripe's next try changes nothing and tells nobody again
    again = post(stripe_app, event)
    assert again.json()["status"] == "duplicate"
    assert len(
        [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]
    ) == len(told)


def test_a_minute_before_that_the_event_is_still_retried(
    rt: Runtime, stripe_app: httpx.Client, clock: FixedClock
) -> None:
    clock.set(CREATED + TELL_AFTER - timedelta(minutes=1))
    refund = sr.event("charge.refunded", sr.charge_refunded("pi_never", 50000, 50000))

    answer = post(stripe_app, refund)

    assert answer.status_code == 503
