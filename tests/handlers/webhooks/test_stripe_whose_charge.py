"""POST /webhooks/stripe with a refund or card dispute whose payment arbot has not recorded, through
the real ASGI app with Stripe's API served by a local fake: a charge the business made outside
arbot's payment links (its PaymentIntent carries no arbot mark, and no link of arbot's made it) is
acknowledged as ignored at once, telling nobody; one of arbot's, one from a link made before the
mark, or one Stripe cannot say anything about keeps the retry-then-finance-channel path. One that
names only its charge (Stripe's older format) is matched by the PaymentIntent behind the charge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from bot.core.clock import FixedClock
from bot.core.models import (
    Escalation,
    Event,
    Invoice,
    Payment,
    PaymentLink,
    Reminder,
    StripeEvent,
)
from bot.core.runtime import Runtime
from bot.payments.stripe_events import TELL_AFTER
from tests.support import stripe_requests as sr
from tests.support.fake_http import local_client
from tests.support.fake_stripe import FakeStripe
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE
from tests.support.write_watch import WriteWatch

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

CREATED = datetime.fromtimestamp(json.loads(sr.event("any", {}))["created"], UTC)
SHOP = "pi_shop"  # a payment the business took through its own Stripe checkout, not arbot's


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(rt: Runtime, stripe_api: FakeStripe) -> Iterator[httpx.Client]:
    """The webhooks' deployment (tests/handlers/webhooks/conftest.py) with Stripe's webhook
    secret and API key set, its API the local fake."""
    rt.settings.stripe_webhook_secret = SecretStr(sr.WEBHOOK_SECRET)
    rt.settings.stripe_api_key = SecretStr("sk_test_arbot")
    rt.settings.stripe_api_base = stripe_api.url
    with serve(rt) as url, local_client(base_url=url, timeout=PATIENCE) as http:
        yield http


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sr.signature(body)},
    )


def intent(pi: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {"id": pi, "object": "payment_intent", "status": "succeeded", "metadata": metadata}


def ledger(rt: Runtime) -> tuple[Any, ...]:
    with rt.sessions() as session:
        return (
            session.execute(select(Invoice.id, Invoice.balance, Invoice.status)).all(),
            session.scalar(select(func.count()).select_from(Payment)),
            session.scalar(select(func.count()).select_from(Event)),
            session.scalar(select(func.count()).select_from(Escalation)),
        )


def told_finance(slack_api: Any) -> list[dict[str, Any]]:
    return [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]


def dispute_without_payment_intent(pi: str) -> dict[str, Any]:
    """A dispute as older API versions send it: the charge, and no PaymentIntent."""
    return {**sr.dispute_created(pi, 50000), "payment_intent": None}


def refund_without_payment_intent(pi: str, amount_minor: int) -> dict[str, Any]:
    """A refund whose charge names no PaymentIntent, as a dispute in the older format does."""
    return {**sr.charge_refunded(pi, amount_minor, amount_minor), "payment_intent": None}


OUTSIDE = [
    pytest.param(sr.charge_refunded(SHOP, 50000, 50000), "charge.refunded", id="refund"),
    pytest.param(sr.dispute_created(SHOP, 50000), "charge.dispute.created", id="dispute"),
    pytest.param(
        dispute_without_payment_intent(SHOP), "charge.dispute.created", id="dispute-of-a-charge"
    ),
    pytest.param(
        refund_without_payment_intent(SHOP, 50000), "charge.refunded", id="refund-of-a-charge"
    ),
]


@pytest.mark.parametrize(("obj", "kind"), OUTSIDE)
def test_a_refund_or_dispute_of_a_charge_made_outside_arbot_is_ignored_at_once_telling_nobody(
    rt: Runtime,
    client: httpx.Client,
    stripe_api: FakeStripe,
    slack_api: Any,
    obj: dict[str, Any],
    kind: str,
) -> None:
    stripe_api.payment_intents[SHOP] = intent(SHOP, {"order": "A-77"})
    stripe_api.charges[f"ch_{SHOP}"] = {
        "id": f"ch_{SHOP}",
        "object": "charge",
        "payment_intent": SHOP,
    }
    before, finance = ledger(rt), len(told_finance(slack_api))
    event = sr.event(kind, obj, f"evt_outside_{kind}")

    answer = post(client, event)

    assert (answer.status_code, answer.json()["status"]) == (200, "ignored"), answer.text
    assert "outside arbot's payment links" in answer.json()["detail"]
    assert ledger(rt) == before
    assert len(told_finance(slack_api)) == finance
    with rt.sessions() as session:  # kept as handled: Stripe's next try changes nothing
        assert session.get(StripeEvent, f"evt_outside_{kind}") is not None
    assert post(client, event).json()["status"] == "duplicate"


@pytest.mark.parametrize(
    "metadata",
    [
        {"arbot_link": "0123abcd", "arbot_invoice_ids": "1", "arbot_customer": "C-1"},
        {"arbot_invoice_ids": "1"},  # a link made before the mark: its invoice ids
    ],
    ids=["marked", "invoice-ids"],
)
def test_a_refund_of_arbots_payment_not_recorded_yet_is_retried_then_told_to_finance(
    rt: Runtime,
    client: httpx.Client,
    stripe_api: FakeStripe,
    slack_api: Any,
    clock: FixedClock,
    metadata: dict[str, str],
) -> None:
    stripe_api.payment_intents["pi_ours"] = intent("pi_ours", metadata)
    refund = sr.event("charge.refunded", sr.charge_refunded("pi_ours", 50000, 50000), "evt_ours")

    early = post(client, refund)

    assert (early.status_code, early.json()["status"]) == (503, "retry"), early.text
    clock.set(CREATED + TELL_AFTER)
    late = post(client, refund)
    assert (late.status_code, late.json()["status"]) == (200, "unmatched"), late.text
    assert any("pi_ours" in c["text"] for c in told_finance(slack_api))


def test_a_dispute_of_a_payment_through_a_link_made_before_the_mark_is_still_retried(
    rt: Runtime, client: httpx.Client, stripe_api: FakeStripe, clock: FixedClock
) -> None:
    """Its PaymentIntent says nothing of arbot, but the Checkout Session that made it came from
    one of arbot's Payment Links."""
    with rt.writing() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == "INV-1001")).one()
        session.add(
            PaymentLink(
                key="old-link",
                customer_id=invoice.customer_id,
                url="https://buy.stripe.test/plink_old",
                provider_id="plink_old",
                currency="USD",
                amount=Decimal("1200.00"),
                invoice_ids=[invoice.id],
                created_at=clock.now(),
            )
        )
    stripe_api.payment_intents["pi_old"] = intent("pi_old", {})
    stripe_api.sessions.append(
        {
            "id": "cs_old",
            "object": "checkout.session",
            "payment_intent": "pi_old",
            "payment_link": "plink_old",
        }
    )
    stripe_api.sessions.append(
        {
            "id": "cs_shop",
            "object": "checkout.session",
            "payment_intent": SHOP,
            "payment_link": "plink_shop",
        }
    )

    answer = post(client, sr.event("charge.dispute.created", sr.dispute_created("pi_old", 120000)))

    assert (answer.status_code, answer.json()["status"]) == (503, "retry"), answer.text
    assert any(read.startswith("/v1/checkout/sessions") for read in stripe_api.reads)


@pytest.mark.parametrize("stripe_answers", ["unknown", "down"])
def test_when_stripe_cannot_say_whose_charge_it_is_the_event_is_retried(
    rt: Runtime, client: httpx.Client, stripe_api: FakeStripe, stripe_answers: str
) -> None:
    if stripe_answers == "down":
        stripe_api.payment_intents[SHOP] = intent(SHOP, {})
        stripe_api.fail_with = 500
    refund = sr.event("charge.refunded", sr.charge_refunded(SHOP, 50000, 50000))

    answer = post(client, refund)

    assert (answer.status_code, answer.json()["status"]) == (503, "retry"), answer.text
    assert stripe_api.reads  # Stripe was asked


def test_stripe_is_asked_with_no_write_transaction_open(
    rt: Runtime, client: httpx.Client, stripe_api: FakeStripe
) -> None:
    stripe_api.payment_intents[SHOP] = intent(SHOP, {})
    with WriteWatch() as watch:
        stripe_api.on_call = watch.called
        try:
            answer = post(
                client, sr.event("charge.refunded", sr.charge_refunded(SHOP, 50000, 50000))
            )
        finally:
            stripe_api.on_call = None

    assert answer.json()["status"] == "ignored", answer.text
    assert f"Stripe GET /v1/payment_intents/{SHOP}" in watch.calls
    assert watch.breaches == []


def test_a_refund_of_a_recorded_payment_asks_stripe_nothing(
    rt: Runtime, client: httpx.Client, stripe_api: FakeStripe
) -> None:
    with rt.sessions() as session:
        invoice_id = session.scalars(select(Invoice.id).where(Invoice.number == "INV-1001")).one()
    paid = sr.event(
        "checkout.session.completed", sr.checkout_completed(120000, [invoice_id], "pi_p")
    )
    assert post(client, paid).json()["status"] == "applied"

    answer = post(client, sr.event("charge.refunded", sr.charge_refunded("pi_p", 120000, 120000)))

    assert answer.json()["status"] == "applied", answer.text
    assert stripe_api.reads == []


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        pytest.param("charge.dispute.created", sr.dispute_created("pi_arbot", 30000), id="dispute"),
        pytest.param(
            "charge.dispute.created",
            dispute_without_payment_intent("pi_arbot"),
            id="dispute-of-a-charge",
        ),
        pytest.param("charge.refunded", sr.charge_refunded("pi_arbot", 30000, 30000), id="refund"),
        pytest.param(
            "charge.refunded",
            refund_without_payment_intent("pi_arbot", 30000),
            id="refund-of-a-charge",
        ),
    ],
)
def test_a_refund_or_dispute_naming_only_the_charge_of_arbots_recorded_payment_is_applied(
    rt: Runtime,
    client: httpx.Client,
    stripe_api: FakeStripe,
    slack_api: Any,
    kind: str,
    obj: dict[str, Any],
) -> None:
    """Stripe's older event format names the charge and no PaymentIntent: the PaymentIntent Stripe
    names behind that charge is arbot's recorded payment, and the event does what the newer
    format does (a dispute escalates and cancels waiting reminders, a refund reopens invoices)."""
    stripe_api.charges["ch_pi_arbot"] = {
        "id": "ch_pi_arbot",
        "object": "charge",
        "payment_intent": "pi_arbot",
    }
    with rt.sessions() as session:
        invoice_id = session.scalars(select(Invoice.id).where(Invoice.number == "INV-1002")).one()
    paid = sr.event("payment_intent.succeeded", sr.payment_intent(30000, [invoice_id], "pi_arbot"))
    assert post(client, paid).json()["status"] == "applied"
    with rt.writing() as session:  # the payment superseded the reminder: as if planned again
        session.execute(update(Reminder).values(state="planned", cancel_reason=None))
        waiting = session.scalars(select(Reminder.id)).all()
    finance = len(told_finance(slack_api))

    answer = post(client, sr.event(kind, obj, "evt_of_pi_arbot"))

    assert (answer.status_code, answer.json()["status"]) == (200, "applied"), answer.text
    assert len(told_finance(slack_api)) == finance  # nobody is told it was never recorded
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        invoice = session.get(Invoice, invoice_id)
        reminders = session.scalars(select(Reminder).where(Reminder.id.in_(waiting))).all()
    assert invoice is not None
    if kind == "charge.dispute.created":
        assert escalation.reason == "card_dispute"
        assert "pi_arbot" in answer.json()["detail"]
        assert waiting and all(r.state == "cancelled" for r in reminders)  # RULES A9
        assert {r.cancel_reason for r in reminders} == {"disputed"}
    else:
        assert escalation.reason == "payment_refunded"
        assert (invoice.status, invoice.balance) == ("open", Decimal("300.00"))
