"""POST /webhooks/stripe with events Stripe signed but arbot cannot use, and with signatures from the
wrong moment, through the real ASGI app: never a 500 (Stripe retries a failure for three days),
one log line without a traceback, and nothing changed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.core.models import Event, Invoice, Payment, Reminder, StripeEvent
from bot.core.runtime import Runtime
from integrations.stripe_events import InvalidStripeEvent, verify
from tests.support import stripe_requests as sr
from tests.support.log_of_test import LogOfTest

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

YEAR_SECONDS = 365 * 24 * 3600


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[LogOfTest]:
    """Asked for first, before the app is served (see tests/support/log_of_test.py)."""
    with caplog.at_level(logging.INFO):
        yield LogOfTest(caplog)


@pytest.fixture
def stripe_app(rt: Runtime, app: httpx.Client) -> httpx.Client:
    """The webhooks' deployment (tests/handlers/webhooks/conftest.py) with Stripe's secret set."""
    rt.settings.stripe_webhook_secret = SecretStr(sr.WEBHOOK_SECRET)
    return app


def post(client: httpx.Client, body: bytes, signature: str | None = None) -> httpx.Response:
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sr.signature(body) if signature is None else signature,
        },
    )


def invoice_id(rt: Runtime, number: str = "INV-1001") -> int:
    with rt.sessions() as session:
        found = session.scalar(select(Invoice.id).where(Invoice.number == number))
    assert found is not None
    return found


def snapshot(rt: Runtime) -> tuple[Any, ...]:
    with rt.sessions() as session:
        return (
            session.execute(select(Invoice.id, Invoice.balance, Invoice.status)).all(),
            session.execute(select(Reminder.id, Reminder.state)).all(),
            session.scalar(select(func.count()).select_from(Payment)),
            session.scalar(select(func.count()).select_from(Event)),
            session.scalar(select(func.count()).select_from(StripeEvent)),
        )


def paid_event(rt: Runtime, change: Callable[[dict[str, Any]], None]) -> bytes:
    """A paid checkout for INV-1001, changed by `change` (which edits the event in place)."""
    event = json.loads(
        sr.event("checkout.session.completed", sr.checkout_completed(50000, [invoice_id(rt)]))
    )
    change(event)
    return json.dumps(event).encode()


def set_field(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return change


ODD_EVENTS = {
    "created-is-soon": (set_field("created", value="soon"), "created"),
    "object-created-is-soon": (set_field("data", "object", "created", value="soon"), "created"),
    "object-created-beyond-any-date": (
        set_field("data", "object", "created", value=10**20),
        "created",
    ),
    "id-over-255-characters": (set_field("id", value="evt_" + "x" * 300), "id"),
    "nul-in-the-id": (set_field("id", value="evt_\x00nul"), "id"),
    "invoice-ids-beyond-any-row": (
        set_field("data", "object", "metadata", "arbot_invoice_ids", value=str(10**30)),
        "arbot_invoice_ids",
    ),
    "invoice-ids-not-numbers": (
        set_field("data", "object", "metadata", "arbot_invoice_ids", value="²,one"),
        "arbot_invoice_ids",
    ),
    "invoice-ids-a-number": (
        set_field("data", "object", "metadata", "arbot_invoice_ids", value=7),
        "arbot_invoice_ids",
    ),
    "amount-beyond-the-ledger": (
        set_field("data", "object", "amount_total", value=10**30),
        "amount_total",
    ),
    "amount-a-string": (set_field("data", "object", "amount_total", value="500"), "amount_total"),
    "payment-intent-an-object": (
        set_field("data", "object", "payment_intent", value={"id": "pi_1"}),
        "payment_intent",
    ),
    "currency-not-a-code": (set_field("data", "object", "currency", value="usd\x00"), "currency"),
    "object-not-an-object": (set_field("data", "object", value="paid"), "data.object"),
    "type-a-number": (set_field("type", value=5), "type"),
}


@pytest.mark.parametrize("case", ODD_EVENTS, ids=list(ODD_EVENTS))
def test_a_signed_event_arbot_cannot_read_is_ignored_with_why_not_failed(
    log: LogOfTest, rt: Runtime, stripe_app: httpx.Client, case: str
) -> None:
    change, field = ODD_EVENTS[case]
    body = paid_event(rt, change)
    before = snapshot(rt)

    answer = post(stripe_app, body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ignored"
    assert field in answer.json()["detail"]
    assert snapshot(rt) == before
    assert not log.failures(), log.failures()
    assert log.text.count("Stripe event ignored") == 1


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b"not json", b"[" * 100_000], ids=["a-list", "not-json", "deep"]
)
def test_a_signed_body_that_is_no_event_is_ignored(
    rt: Runtime, stripe_app: httpx.Client, body: bytes
) -> None:
    before = snapshot(rt)
    answer = post(stripe_app, body)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert snapshot(rt) == before


@pytest.mark.parametrize("ahead", [3600, YEAR_SECONDS], ids=["an-hour", "a-year"])
def test_an_event_signed_ahead_of_our_clock_is_refused(
    rt: Runtime, stripe_app: httpx.Client, ahead: int
) -> None:
    body = paid_event(rt, lambda event: None)
    before = snapshot(rt)

    answer = post(stripe_app, body, sr.signature(body, at=int(time.time()) + ahead))

    assert answer.status_code == 400
    assert snapshot(rt) == before


def test_an_event_signed_a_little_ahead_is_taken(rt: Runtime, stripe_app: httpx.Client) -> None:
    """Clocks drift: a minute ahead is within the skew allowed."""
    body = paid_event(rt, lambda event: None)
    answer = post(stripe_app, body, sr.signature(body, at=int(time.time()) + 60))
    assert answer.status_code == 200 and answer.json()["status"] == "applied"


def test_the_signed_moment_may_be_five_minutes_either_side_and_no_more() -> None:
    body = b'{"id": "evt_1", "type": "ping", "data": {"object": {}}}'
    now = 1_800_000_000
    for at in (now - 300, now, now + 300):
        assert verify(body, sr.signature(body, at=at), sr.WEBHOOK_SECRET, now=now).id == "evt_1"
    for at in (now - 301, now + 301):
        with pytest.raises(InvalidStripeEvent):
            verify(body, sr.signature(body, at=at), sr.WEBHOOK_SECRET, now=now)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_body_that_is_not_utf8_gets_400(
    log: LogOfTest, rt: Runtime, stripe_app: httpx.Client, signed: bool
) -> None:
    body = b'{"id": "evt_\xff\xfe"}'
    before = snapshot(rt)
    answer = post(stripe_app, body, None if signed else "t=1,v1=00")
    assert answer.status_code == 400
    assert snapshot(rt) == before
    assert not log.failures(), log.failures()


def test_a_refund_or_dispute_without_an_amount_is_ignored(
    rt: Runtime, stripe_app: httpx.Client
) -> None:
    paid = post(
        stripe_app, paid_event(rt, set_field("data", "object", "payment_intent", value="pi_odd"))
    )
    assert paid.json()["status"] == "applied"
    refund = sr.charge_refunded("pi_odd", 50000, 50000)
    del refund["amount_refunded"]
    dispute = sr.dispute_created("pi_odd", 50000)
    del dispute["amount"]
    before = snapshot(rt)

    refunded = post(stripe_app, sr.event("charge.refunded", refund))
    disputed = post(stripe_app, sr.event("charge.dispute.created", dispute))

    assert (refunded.status_code, refunded.json()["status"]) == (200, "ignored")
    assert (disputed.status_code, disputed.json()["status"]) == (200, "ignored")
    assert snapshot(rt)[:4] == before[:4]  # only the two event ids are kept, as handled
