"""Two workspaces whose businesses take payments on one Stripe account: Stripe sends every event
of the account to every endpoint registered on it, each signed with that endpoint's own secret,
so a payment made through one workspace's link also reaches the other workspace's address,
correctly signed. Invoice ids are per database (each workspace has an invoice 1), so the link's
invoice ids alone cannot tell whose payment it is: the workspace its link was made for must."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.models import Invoice, PaymentLink, StripeEvent
from bot.core.runtime import Runtime, start
from bot.planning.flows import plan_day
from bot.workspaces.registry import Workspaces
from integrations.wiring import links_for
from tests.support import stripe_requests as sr
from tests.support.fake_stripe import FakeStripe
from tests.support.ledger_files import a_week_late
from tests.support.serving import serve
from tests.support.workspace_setup import (
    BETA,
    beta_rows,
    deployment_settings,
    import_rows,
    install,
)

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)
MAIN_STRIPE_SECRET = "whsec_main_endpoint"
BETA_STRIPE_SECRET = "whsec_beta_endpoint"


@pytest.fixture
def one_stripe_account(
    database_url: str, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> Iterator[tuple[Runtime, Runtime, Workspaces, FakeStripe]]:
    """The main workspace (Customer 1, invoice 1) and Beta (its own invoice 1), both using the
    same Stripe account, each with its own webhook endpoint and secret."""
    stripe_api = FakeStripe().start()
    main = start(
        deployment_settings(
            database_url,
            slack_api,
            stripe_api_key="sk_test_arbot",
            stripe_api_base=stripe_api.url,
            stripe_webhook_secret=MAIN_STRIPE_SECRET,
        ),
        clock=clock,
    )
    workspaces = Workspaces(main)
    try:
        import_rows(main, tmp_path, a_week_late(1))
        install(main, workspaces, slack_api)
        workspaces.set_settings(
            BETA,
            {"STRIPE_API_KEY": "sk_test_arbot", "STRIPE_WEBHOOK_SECRET": BETA_STRIPE_SECRET},
        )
        beta = workspaces.runtime(BETA)
        import_rows(beta, tmp_path, beta_rows())
        yield main, beta, workspaces, stripe_api
    finally:
        workspaces.close()
        main.close()
        stripe_api.stop()


def _link_metadata(runtime: Runtime, stripe_api: FakeStripe) -> dict[str, Any]:
    """The metadata of the payment link today's plan made for invoice 1, as Stripe holds it."""
    plan_day(runtime, TODAY, links=links_for(runtime.settings), slack=None)
    with runtime.sessions() as session:
        link = session.scalars(select(PaymentLink)).one()
        assert link.invoice_ids == [1]
    made = [p for p in stripe_api.created("/v1/payment_links") if p["metadata"]]
    metadata: dict[str, Any] = made[-1]["metadata"]
    assert metadata["arbot_invoice_ids"] == "1"
    return metadata


def _pay(url: str, path: str, metadata: dict[str, Any], secret: str, pi: str) -> httpx.Response:
    obj = sr.checkout_completed(120000, [1], payment_intent=pi, payment_link=None)
    obj["metadata"] = metadata
    body = sr.event("checkout.session.completed", obj)
    headers = {"Content-Type": "application/json", "Stripe-Signature": sr.signature(body, secret)}
    return httpx.post(f"{url}{path}", content=body, headers=headers)


def _status(runtime: Runtime) -> str:
    with runtime.sessions() as session:
        return session.scalar(select(Invoice.status).where(Invoice.id == 1)) or ""


def test_a_payment_through_one_workspaces_link_pays_nothing_in_another(
    one_stripe_account: tuple[Runtime, Runtime, Workspaces, FakeStripe],
) -> None:
    main, beta, workspaces, stripe_api = one_stripe_account
    main_link = _link_metadata(main, stripe_api)
    beta_link = _link_metadata(beta, stripe_api)
    with serve(main, workspaces) as url:
        # Main's customer pays main's link: Stripe tells both endpoints of the account.
        at_beta = _pay(url, f"/w/{BETA}/webhooks/stripe", main_link, BETA_STRIPE_SECRET, "pi_m")
        assert at_beta.status_code == 200 and at_beta.json()["status"] == "ignored", at_beta.text
        assert _status(beta) == "open"  # Beta's invoice 1 is not paid by main's customer
        at_main = _pay(url, "/webhooks/stripe", main_link, MAIN_STRIPE_SECRET, "pi_m")
        assert at_main.json()["status"] == "applied", at_main.text
        assert _status(main) == "paid"

        # and the other way round: Beta's customer pays Beta's link
        at_main = _pay(url, "/webhooks/stripe", beta_link, MAIN_STRIPE_SECRET, "pi_b")
        assert at_main.json()["status"] == "ignored", at_main.text
        at_beta = _pay(url, f"/w/{BETA}/webhooks/stripe", beta_link, BETA_STRIPE_SECRET, "pi_b")
        assert at_beta.json()["status"] == "applied", at_beta.text
        assert _status(beta) == "paid"


def test_the_same_invoice_ids_and_balance_give_each_workspace_its_own_link(
    one_stripe_account: tuple[Runtime, Runtime, Workspaces, FakeStripe],
) -> None:
    """A link's idempotency key comes from its invoices' ids and balances, which another
    workspace's books can share: Stripe would answer Beta with main's link (Stripe returns the
    object first made with a key), and Beta's customer would pay main's business."""
    main, beta, _workspaces, stripe_api = one_stripe_account
    with beta.writing() as session:
        invoice = session.get(Invoice, 1)
        assert invoice is not None
        invoice.total = invoice.balance = Decimal("1200.00")  # as main's invoice 1
    _link_metadata(main, stripe_api)
    _link_metadata(beta, stripe_api)
    with main.sessions() as session:
        main_url = session.scalars(select(PaymentLink.url)).one()
    with beta.sessions() as session:
        beta_url = session.scalars(select(PaymentLink.url)).one()
    assert beta_url != main_url
    assert len(stripe_api.created("/v1/payment_links")) == 2


def _send(url: str, path: str, kind: str, obj: dict[str, Any], secret: str) -> httpx.Response:
    body = sr.event(kind, obj)
    headers = {"Content-Type": "application/json", "Stripe-Signature": sr.signature(body, secret)}
    return httpx.post(f"{url}{path}", content=body, headers=headers)


def _stored_events(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(StripeEvent)) or 0


def test_a_refund_or_dispute_of_another_workspaces_payment_is_ignored_at_once(
    one_stripe_account: tuple[Runtime, Runtime, Workspaces, FakeStripe],
) -> None:
    """A refund's charge and a dispute carry no link metadata of their own: only the PaymentIntent
    behind them (which Stripe is asked for) names the workspace whose link made it. Beta's
    customer's refund or dispute is nothing in main's books: 200 "ignored", not a 503 retried
    for an hour and then told to main's finance channel as a payment never recorded."""
    main, beta, workspaces, stripe_api = one_stripe_account
    beta_link = _link_metadata(beta, stripe_api)
    stripe_api.payment_intents["pi_b"] = {
        "id": "pi_b",
        "object": "payment_intent",
        "status": "succeeded",
        "metadata": beta_link,
    }
    stripe_api.charges["ch_pi_b"] = {"id": "ch_pi_b", "object": "charge", "payment_intent": "pi_b"}
    older_dispute = sr.dispute_created("pi_b", 120000)
    del older_dispute["payment_intent"]  # Stripe's older format names only the charge
    with serve(main, workspaces) as url:
        paid = _pay(url, f"/w/{BETA}/webhooks/stripe", beta_link, BETA_STRIPE_SECRET, "pi_b")
        assert paid.json()["status"] == "applied", paid.text
        for kind, obj in (
            ("charge.refunded", sr.charge_refunded("pi_b", 120000, 120000)),
            ("charge.dispute.created", sr.dispute_created("pi_b", 120000)),
            ("charge.dispute.created", older_dispute),
        ):
            at_main = _send(url, "/webhooks/stripe", kind, obj, MAIN_STRIPE_SECRET)
            assert at_main.status_code == 200, (kind, at_main.text)
            assert at_main.json()["status"] == "ignored", (kind, at_main.text)
            assert BETA in at_main.json()["detail"]
        assert _stored_events(main) == 0
        assert _status(main) == "open"
        # Beta, whose payment it is, still gets its dispute.
        at_beta = _send(
            url,
            f"/w/{BETA}/webhooks/stripe",
            "charge.dispute.created",
            sr.dispute_created("pi_b", 120000),
            BETA_STRIPE_SECRET,
        )
        assert at_beta.json()["status"] == "applied", at_beta.text


def test_a_refund_whose_payment_intent_names_no_workspace_still_waits_for_its_payment(
    one_stripe_account: tuple[Runtime, Runtime, Workspaces, FakeStripe],
) -> None:
    """A link made before links named their workspace may be this workspace's: its refund still
    waits for its payment (503), as it always did."""
    main, _beta, workspaces, stripe_api = one_stripe_account
    stripe_api.payment_intents["pi_old"] = {
        "id": "pi_old",
        "object": "payment_intent",
        "status": "succeeded",
        "metadata": {"arbot_invoice_ids": "1"},
    }
    with serve(main, workspaces) as url:
        at_main = _send(
            url,
            "/webhooks/stripe",
            "charge.refunded",
            sr.charge_refunded("pi_old", 120000, 120000),
            MAIN_STRIPE_SECRET,
        )
        assert at_main.status_code == 503, at_main.text
        assert at_main.json()["status"] == "retry"
