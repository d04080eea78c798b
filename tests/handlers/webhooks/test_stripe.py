"""POST /webhooks/stripe through the real ASGI app: events signed the way Stripe signs them, the
ledger and the reminders after each, and what Slack is told (through the local fake Web API)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, Event, Invoice, Payment, PaymentLink, Reminder, StripeEvent
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings
from bot.escalations import posting as escalation_posting
from bot.escalations import service
from bot.ledger.upsert import apply_batch
from bot.planning import posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support import planned_sqlite
from tests.support import stripe_requests as sr
from tests.support.fake_http import local_client
from tests.support.ledger_files import row, write
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TODAY = date(2026, 3, 16)


@pytest.fixture
def stripe_settings(database_url: str, slack_api: Any) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        escalation_channel="C0ESCALATE",
        stripe_webhook_secret=sr.WEBHOOK_SECRET,
    )


@pytest.fixture
def rt(
    stripe_settings: Settings, clock: FixedClock, tmp_path: Path, slack_api: Any
) -> Iterator[Runtime]:
    rows = [
        row(invoice_number="INV-1", amount="1200.00", balance="1200.00", due_date="2026-03-08"),
        row(invoice_number="INV-2", amount="300.00", balance="300.00", due_date="2026-03-09"),
        row(
            customer_id="C-2",
            customer_name="Harbor Dental",
            invoice_number="INV-9",
            due_date="2026-03-09",
            email="billing@harbor.example",
            phone="+13125550199",
            owner_slack_id="",
        ),
    ]
    rules = PlanRules.from_settings(stripe_settings)

    def make(runtime: Runtime) -> None:
        with runtime.writing() as session:
            apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
            run_plan(session, rules, TODAY, clock.now(), False)

    runtime = planned_sqlite.set_up_once(
        stripe_settings.database_url,
        f"stripe rt {rows!r} {rules!r} {clock.now().isoformat()}",
        lambda: start(stripe_settings, clock=clock),
        make,
    )
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    posting.post_plan(runtime, chat, "C0FINANCE", TODAY)
    yield runtime
    runtime.close()


@pytest.fixture
def app(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(rt) as url, local_client(base_url=url, timeout=PATIENCE) as client:
        yield client


def _post(client: httpx.Client, body: bytes, signature: str | None = None) -> httpx.Response:
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature if signature is not None else sr.signature(body),
        },
    )


def _ids(rt: Runtime, *numbers: str) -> list[int]:
    with rt.sessions() as session:
        found = dict(session.execute(select(Invoice.number, Invoice.id)).all())
    return [found[n] for n in numbers]


def _snapshot(rt: Runtime) -> tuple[Any, ...]:
    with rt.sessions() as session:
        return (
            session.execute(
                select(Invoice.number, Invoice.balance, Invoice.status).order_by(Invoice.id)
            ).all(),
            session.execute(select(Reminder.id, Reminder.state).order_by(Reminder.id)).all(),
            session.scalar(select(func.count()).select_from(Payment)),
            session.scalar(select(func.count()).select_from(Event)),
        )


def _reminder_of(rt: Runtime, customer_ref: str) -> Reminder:
    from bot.core.models import Customer

    with rt.sessions() as session:
        reminder = session.scalars(
            select(Reminder).join(Customer).where(Customer.external_id == customer_ref)
        ).one()
        session.expunge(reminder)
        return reminder


def _open_thread(rt: Runtime, slack_api: Any, customer_ref: str = "C-1") -> Escalation:
    from bot.core.models import Customer

    with rt.writing() as session:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.external_id == customer_ref)
        )
        assert customer_id is not None
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    escalation_posting.post_new(rt, chat, "C0ESCALATE")
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def test_a_paid_checkout_closes_the_invoices_cancels_the_reminders_and_says_so(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    thread = _open_thread(rt, slack_api)
    reminder = _reminder_of(rt, "C-1")
    assert reminder.state == "planned" and reminder.slack_ts
    body = sr.event(
        "checkout.session.completed", sr.checkout_completed(150000, _ids(rt, "INV-1", "INV-2"))
    )

    answer = _post(app, body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "applied"
    with rt.sessions() as session:
        invoices = session.execute(
            select(Invoice.number, Invoice.balance, Invoice.status).where(Invoice.number != "INV-9")
        ).all()
        assert sorted(invoices) == [("INV-1", Decimal(0), "paid"), ("INV-2", Decimal(0), "paid")]
        payment = session.scalars(select(Payment)).one()
        assert (payment.source, payment.external_id, payment.amount) == (
            "stripe",
            "pi_test_1",
            Decimal("1500.00"),
        )
        cancelled = session.get(Reminder, reminder.id)
        assert cancelled is not None
    assert (cancelled.state, cancelled.cancel_reason) == ("cancelled", "paid")
    # the card in the finance channel now says so
    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    assert "Cancelled" in json.dumps(card["blocks"])
    note = [
        c
        for c in slack_api.calls("chat.postMessage")
        if c.get("thread_ts") == thread.slack_thread_ts
    ]
    assert any("Paid: INV-1" in c["text"] and "Paid: INV-2" in c["text"] for c in note)


def test_a_repeated_event_or_the_same_payment_again_changes_nothing(
    rt: Runtime, app: httpx.Client
) -> None:
    ids = _ids(rt, "INV-1")
    body = sr.event("checkout.session.completed", sr.checkout_completed(50000, ids), "evt_once")
    assert _post(app, body).json()["status"] == "applied"
    before = _snapshot(rt)

    again = _post(app, body)  # Stripe retries the very same event
    same_payment = _post(app, sr.event("payment_intent.succeeded", sr.payment_intent(50000, ids)))

    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert same_payment.status_code == 200 and same_payment.json()["status"] == "duplicate"
    after = _snapshot(rt)
    assert after[:3] == before[:3]
    with rt.sessions() as session:
        balance = session.scalar(select(Invoice.balance).where(Invoice.id == ids[0]))
    assert balance == Decimal("700.00")  # 1,200 less 500, taken once


@pytest.mark.parametrize(
    "signature",
    [
        "t=1,v1=00",  # forged and ancient
        sr.signature(b"something else"),  # signed over another body
        "",  # missing
    ],
    ids=["forged", "other-body", "missing"],
)
def test_a_bad_signature_gets_400_and_changes_nothing(
    rt: Runtime, app: httpx.Client, signature: str
) -> None:
    body = sr.event("checkout.session.completed", sr.checkout_completed(150000, _ids(rt, "INV-1")))
    before = _snapshot(rt)

    answer = _post(app, body, signature)

    assert answer.status_code == 400
    assert _snapshot(rt) == before


def test_an_old_signature_is_refused(rt: Runtime, app: httpx.Client) -> None:
    body = sr.event("checkout.session.completed", sr.checkout_completed(150000, _ids(rt, "INV-1")))
    stale = sr.signature(body, at=int(time.time()) - 301)  # past Stripe's five minutes
    before = _snapshot(rt)

    assert _post(app, body, stale).status_code == 400
    assert _snapshot(rt) == before


def test_the_wrong_secret_is_refused(rt: Runtime, app: httpx.Client) -> None:
    body = sr.event("checkout.session.completed", sr.checkout_completed(150000, _ids(rt, "INV-1")))
    before = _snapshot(rt)
    assert _post(app, body, sr.signature(body, secret="whsec_someone_else")).status_code == 400
    assert _snapshot(rt) == before


def test_a_part_payment_reduces_the_balance_and_stops_the_reminder_quoting_the_old_amount(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = _reminder_of(rt, "C-1")
    body = sr.event("payment_intent.succeeded", sr.payment_intent(20000, _ids(rt, "INV-1")))

    assert _post(app, body).json()["status"] == "applied"

    with rt.sessions() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == "INV-1")).one()
        assert (invoice.balance, invoice.status) == (Decimal("1000.00"), "open")
        after = session.get(Reminder, reminder.id)
        assert after is not None
        assert reminder.state == "planned"
        assert (after.state, after.cancel_reason) == ("cancelled", "superseded")


def test_a_payment_link_without_metadata_is_found_by_its_link(
    rt: Runtime, app: httpx.Client
) -> None:
    ids = _ids(rt, "INV-2")
    with rt.writing() as session:
        from bot.core.models import Customer

        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "C-1"))
        assert customer_id is not None
        session.add(
            PaymentLink(
                key="k1",
                customer_id=customer_id,
                url="https://buy.stripe.com/test_1",
                provider_id="plink_only",
                currency="USD",
                amount=Decimal("300.00"),
                invoice_ids=ids,
                created_at=rt.clock.now(),
            )
        )
    obj = sr.checkout_completed(30000, ids, payment_link="plink_only", metadata=False)

    assert _post(app, sr.event("checkout.session.completed", obj)).json()["status"] == "applied"
    with rt.sessions() as session:
        assert session.scalar(select(Invoice.status).where(Invoice.id == ids[0])) == "paid"


def test_a_refund_reopens_what_it_gives_back_once(rt: Runtime, app: httpx.Client) -> None:
    ids = _ids(rt, "INV-1", "INV-2")
    _post(app, sr.event("checkout.session.completed", sr.checkout_completed(150000, ids, "pi_r")))

    partial = sr.event("charge.refunded", sr.charge_refunded("pi_r", 150000, 10000))
    assert _post(app, partial).json()["status"] == "applied"
    assert (
        _post(app, sr.event("charge.refunded", sr.charge_refunded("pi_r", 150000, 10000))).json()[
            "status"
        ]
        == "duplicate"
    )  # a second event saying the same total gives back nothing more

    with rt.sessions() as session:
        rows = dict(
            session.execute(
                select(Invoice.number, Invoice.balance).where(Invoice.id.in_(ids))
            ).all()
        )
        statuses = dict(
            session.execute(select(Invoice.number, Invoice.status).where(Invoice.id.in_(ids))).all()
        )
    # the newest allocation (INV-2, due later) gives back first
    assert rows == {"INV-1": Decimal(0), "INV-2": Decimal("100.00")}
    assert statuses == {"INV-1": "paid", "INV-2": "open"}

    full = sr.event("charge.refunded", sr.charge_refunded("pi_r", 150000, 150000))
    assert _post(app, full).json()["status"] == "applied"
    with rt.sessions() as session:
        rows = dict(
            session.execute(
                select(Invoice.number, Invoice.balance).where(Invoice.id.in_(ids))
            ).all()
        )
    assert rows == {"INV-1": Decimal("1200.00"), "INV-2": Decimal("300.00")}


def test_a_card_dispute_tells_the_owner_in_the_escalation_channel(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    _post(
        app,
        sr.event(
            "checkout.session.completed", sr.checkout_completed(120000, _ids(rt, "INV-1"), "pi_d")
        ),
    )

    answer = _post(app, sr.event("charge.dispute.created", sr.dispute_created("pi_d", 120000)))

    assert answer.json()["status"] == "applied"
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.reason == "card_dispute"
    assert escalation.slack_channel == "C0ESCALATE" and escalation.slack_thread_ts
    parent = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    assert "<@U07DANA01>" in json.dumps(parent["blocks"])  # the account owner
    assert "disputed at the bank" in json.dumps(parent["blocks"])


def test_an_unknown_event_is_acknowledged_and_recorded(rt: Runtime, app: httpx.Client) -> None:
    before = _snapshot(rt)
    answer = _post(
        app, sr.event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_x")
    )

    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert _snapshot(rt)[:3] == before[:3]
    with rt.sessions() as session:
        assert session.get(StripeEvent, "evt_x") is not None


def test_a_payment_for_someone_elses_invoices_is_not_applied(
    rt: Runtime, app: httpx.Client
) -> None:
    ids = _ids(rt, "INV-1", "INV-9")  # two customers: not one of arbot's links
    before = _snapshot(rt)
    answer = _post(app, sr.event("checkout.session.completed", sr.checkout_completed(10000, ids)))
    assert answer.json()["status"] == "ignored"
    assert _snapshot(rt)[:3] == before[:3]


def test_paid_invoices_payment_links_are_deactivated_at_stripe(
    stripe_settings: Settings, clock: FixedClock, tmp_path: Path, slack_api: Any
) -> None:
    from tests.support.fake_stripe import FakeStripe

    stripe_api = FakeStripe().start()
    try:
        settings = stripe_settings.model_copy(
            update={"stripe_api_key": SecretStr("sk_test_arbot"), "stripe_api_base": stripe_api.url}
        )
        runtime = start(settings, clock=clock)
        try:
            rows = [row(invoice_number="INV-1", due_date="2026-03-09")]
            with runtime.writing() as session:
                apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
                invoice = session.scalars(select(Invoice)).one()
                for key, link_id, ids in (
                    ("a", "plink_old", [invoice.id]),
                    ("b", "plink_other", []),
                ):
                    session.add(
                        PaymentLink(
                            key=key,
                            customer_id=invoice.customer_id,
                            url=f"https://buy.stripe.test/{link_id}",
                            provider_id=link_id,
                            currency="USD",
                            amount=Decimal("1200.00"),
                            invoice_ids=ids,
                            created_at=clock.now(),
                        )
                    )
                ids = [invoice.id]
            with serve(runtime) as url, local_client(base_url=url, timeout=PATIENCE) as client:
                body = sr.event("payment_intent.succeeded", sr.payment_intent(120000, ids, "pi_l"))
                assert _post(client, body).json()["status"] == "applied"
            assert list(stripe_api.updated) == ["plink_old"]  # only the link of the paid invoice
            assert stripe_api.updated["plink_old"]["active"] == "false"
            with runtime.sessions() as session:
                retired = session.scalars(
                    select(PaymentLink.provider_id).where(PaymentLink.retired_at.is_not(None))
                ).all()
            assert retired == ["plink_old"]
        finally:
            runtime.close()
    finally:
        stripe_api.stop()


def test_a_ledger_that_has_not_caught_up_does_not_undo_a_part_payment(
    rt: Runtime, app: httpx.Client, tmp_path: Path
) -> None:
    ids = _ids(rt, "INV-1")
    _post(app, sr.event("payment_intent.succeeded", sr.payment_intent(40000, ids, "pi_part")))
    stale = [
        row(invoice_number="INV-1", amount="1200.00", balance="1200.00", due_date="2026-03-08")
    ]

    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "stale.csv", stale)), rt.clock.now())

    with rt.sessions() as session:
        assert session.scalar(select(Invoice.balance).where(Invoice.id == ids[0])) == Decimal(
            "800.00"
        )


def test_refunding_an_overpayment_gives_back_the_unapplied_part_first(
    rt: Runtime, app: httpx.Client
) -> None:
    ids = _ids(rt, "INV-2")  # 300 due
    _post(app, sr.event("payment_intent.succeeded", sr.payment_intent(40000, ids, "pi_over")))

    answer = _post(app, sr.event("charge.refunded", sr.charge_refunded("pi_over", 40000, 10000)))

    assert answer.status_code == 200
    with rt.sessions() as session:
        invoice = session.get(Invoice, ids[0])
        assert invoice is not None and (invoice.status, invoice.balance) == ("paid", Decimal(0))


def test_money_that_cannot_be_applied_goes_to_a_person(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    ids = _ids(rt, "INV-2")
    _post(app, sr.event("payment_intent.succeeded", sr.payment_intent(30000, ids, "pi_first")))

    paid_again = _post(
        app, sr.event("payment_intent.succeeded", sr.payment_intent(30000, ids, "pi_again"))
    )

    assert paid_again.json()["status"] == "applied"
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert escalation.reason == "payment_unapplied" and "refund may be owed" in (
        escalation.detail or ""
    )
    assert escalation.slack_thread_ts  # posted for a person


def test_slack_being_down_after_a_payment_still_answers_stripe_200(
    rt: Runtime, app: httpx.Client, slack_api: Any
) -> None:
    for _ in range(20):
        slack_api.fail_next("chat.update", "fatal_error")
        slack_api.fail_next("chat.postMessage", "fatal_error")
    body = sr.event(
        "payment_intent.succeeded", sr.payment_intent(120000, _ids(rt, "INV-1"), "pi_s")
    )

    answer = _post(app, body)

    assert answer.status_code == 200 and answer.json()["status"] == "applied"
    with rt.sessions() as session:
        assert session.scalar(select(Invoice.status).where(Invoice.number == "INV-1")) == "paid"


def test_a_refund_of_a_charge_with_a_long_id_is_recorded_not_failed(
    rt: Runtime, app: httpx.Client
) -> None:
    """A charge id as long as Stripe may make one (the event's ids are bounded at 128) still fits
    the refund's own id column: the refund is applied, never a 500 Stripe would retry."""
    ids = _ids(rt, "INV-2")  # 300 due
    pi = "pi_" + "p" * 90
    _post(app, sr.event("payment_intent.succeeded", sr.payment_intent(30000, ids, pi)))
    charge = sr.charge_refunded(pi, 30000, 30000) | {"id": "ch_" + "c" * 120}

    answer = _post(app, sr.event("charge.refunded", charge))
    again = _post(app, sr.event("charge.refunded", charge))

    assert (answer.status_code, answer.json()["status"]) == (200, "applied"), answer.text
    assert again.json()["status"] == "duplicate"
    with rt.sessions() as session:
        invoice = session.get(Invoice, ids[0])
        assert invoice is not None and (invoice.status, invoice.balance) == ("open", Decimal(300))
