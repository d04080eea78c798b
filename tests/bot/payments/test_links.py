"""Payment links: the ledger's own, else one Stripe link per set of invoices, made once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.models import Invoice, PaymentLink, Reminder
from bot.core.runtime import Runtime
from tests.support.fake_stripe import FakeStripe
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)


@pytest.fixture
def stripe_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """The fake Stripe API; the client's retries of a failed call are made as many times as
    ever, but at once: without stripe's waits of half a second, then a second, between tries."""
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.0)
    fake = FakeStripe().start()
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_arbot")
    monkeypatch.setenv("STRIPE_API_BASE", fake.url)
    yield fake
    fake.stop()


def _load(cli: Any, tmp_path: Path, *rows: dict[str, str]) -> None:
    assert cli("import-csv", str(write(tmp_path / "l.csv", list(rows)))).code == 0


def _due(days: int, **fields: str) -> dict[str, str]:
    due = TODAY - timedelta(days=days)
    return row(issue_date="2026-01-01", due_date=due.isoformat(), **fields)


def _body(runtime: Runtime) -> str:
    with runtime.sessions() as session:
        return session.scalars(select(Reminder.body_text)).one() or ""


def test_a_reminder_carries_one_stripe_link_for_exactly_its_invoices(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    _load(
        cli,
        tmp_path,
        _due(7, invoice_number="A", amount="1200.00", balance="1200.00"),
        _due(8, invoice_number="B", amount="99.95", balance="50.05"),
    )
    assert cli("plan").code == 0, "plan failed"
    assert "https://buy.stripe.test/plink_2" in _body(runtime)
    price = stripe_api.created("/v1/prices")[0]
    assert (price["currency"], price["unit_amount"]) == ("usd", "125005")
    link = stripe_api.created("/v1/payment_links")[0]
    assert link["restrictions"] == {"completed_sessions": {"limit": "1"}}
    with runtime.sessions() as session:
        ids = sorted(session.scalars(select(Invoice.id)))
    assert link["metadata"]["arbot_invoice_ids"] == ",".join(map(str, ids))
    assert all(key and key.startswith("arbot-") for _, _, key in stripe_api.calls)


def test_a_stripe_link_marks_its_payment_as_arbots_with_the_invoices_it_covers(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    """The PaymentIntent a Payment Link makes carries `payment_intent_data.metadata`: the mark a
    refund or dispute of it is known by, and the invoice ids a payment is applied to."""
    _load(cli, tmp_path, _due(7, invoice_number="A"), _due(8, invoice_number="B"))
    assert cli("plan").code == 0
    link = stripe_api.created("/v1/payment_links")[0]
    with runtime.sessions() as session:
        ids = sorted(session.scalars(select(Invoice.id)))
        key = session.scalars(select(PaymentLink.key)).one()
    on_payment = link["payment_intent_data"]["metadata"]
    assert on_payment["arbot_link"] == key
    assert on_payment["arbot_invoice_ids"] == ",".join(map(str, ids))


def test_the_link_is_reused_until_something_changes(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    _load(cli, tmp_path, _due(7))
    assert cli("plan").code == 0
    calls = len(stripe_api.calls)
    with runtime.writing() as session:  # as if the reminder were skipped, and planned again later
        session.execute(update(Reminder).values(state="skipped"))
    assert cli("plan", "--date", "2026-03-23").code == 0  # the +14 step, same balance
    assert len(stripe_api.calls) == calls
    with runtime.sessions() as session:
        assert len(session.scalars(select(PaymentLink)).all()) == 1


def test_the_ledgers_own_pay_url_wins(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    _load(cli, tmp_path, _due(7))
    with runtime.writing() as session:
        session.execute(update(Invoice).values(payment_link="https://pay.ledger.example/inv/1"))
    assert cli("plan").code == 0
    assert "https://pay.ledger.example/inv/1" in _body(runtime)
    assert stripe_api.calls == []


def test_two_currencies_get_no_link_and_the_message_says_how_to_pay(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    _load(cli, tmp_path, _due(7, invoice_number="A"), _due(7, invoice_number="B", currency="EUR"))
    assert cli("plan").code == 0
    assert "payment details" in _body(runtime)
    assert stripe_api.calls == []


def test_when_stripe_is_down_the_reminder_is_held_for_a_person(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    stripe_api.fail_with = 500
    _load(cli, tmp_path, _due(7))
    result = cli("plan", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["reminders"] == []
    assert doc["held"][0]["reason"] == "payment_link_error"


def test_without_stripe_there_is_no_link(cli: Any, runtime: Runtime, tmp_path: Path) -> None:
    _load(cli, tmp_path, _due(7))
    assert cli("plan").code == 0
    assert "payment details" in _body(runtime)


def test_a_held_reminder_says_what_the_processor_said(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    stripe_api.fail_with = 500
    _load(cli, tmp_path, _due(7))
    doc = json.loads(cli("plan", "--json").stdout)
    assert "Stripe is down" in doc["held"][0]["detail"]


def test_a_link_not_made_before_the_plan_is_stored_holds_the_reminder_without_calling_stripe(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    """The ledger changed between the plan's first reading and its store: the link the stored
    plan needs was never made, and none is made inside the write transaction."""
    from bot.payments.links import PreparedLinks
    from bot.planning.planner import PlanRules
    from bot.planning.store import run_plan

    _load(cli, tmp_path, _due(7))
    with runtime.writing() as session:
        run = run_plan(
            session,
            PlanRules.from_settings(runtime.settings),
            TODAY,
            runtime.clock.now(),
            dry_run=False,
            links=PreparedLinks({}),
        )
    assert run.reminder_ids == {}
    assert [h.reason for h in run.plan.held] == ["payment_link_error"]
    assert stripe_api.calls == []


def test_a_stale_link_is_retired_but_not_the_newer_link_for_what_is_still_open(
    runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path, cli: Any
) -> None:
    """A link for A and B whose deactivation failed when A was paid, and the link made since for
    B alone (the one the customer was sent): the catch-up retires the first only."""
    from bot.payments.links import retire_stale
    from integrations.stripe_links import StripeLinks

    _load(
        cli,
        tmp_path,
        _due(7, invoice_number="A", amount="100.00", balance="100.00"),
        _due(7, invoice_number="B", amount="200.00", balance="200.00"),
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        a, b = session.scalars(select(Invoice).order_by(Invoice.number)).all()
        a.balance, a.status = Decimal(0), "paid"
        for key, provider_id, invoices, amount in [
            ("old", "plink_ab", [a.id, b.id], Decimal("300.00")),
            ("new", "plink_b", [b.id], Decimal("200.00")),
        ]:
            session.add(
                PaymentLink(
                    key=key,
                    customer_id=a.customer_id,
                    url=f"https://buy.stripe.test/{provider_id}",
                    provider_id=provider_id,
                    currency="USD",
                    amount=amount,
                    invoice_ids=invoices,
                    created_at=now,
                )
            )

    assert retire_stale(runtime, StripeLinks("sk_test_arbot", stripe_api.url)) == ["plink_ab"]
    assert set(stripe_api.updated) == {"plink_ab"}
    with runtime.sessions() as session:
        live = session.scalars(select(PaymentLink.key).where(PaymentLink.retired_at.is_(None)))
        assert list(live) == ["new"]


@pytest.mark.parametrize(
    ("currency", "balance", "unit_amount"),
    [
        ("USD", "1250.05", "125005"),
        ("JPY", "150000", "150000"),
        ("ISK", "10000", "1000000"),  # Stripe counts krónur in hundredths: 100 is 1 ISK
        ("HUF", "250000", "25000000"),  # two-decimal at Stripe for charges
        ("KWD", "120.500", "120500"),
    ],
)
def test_the_link_charges_the_balance_in_stripes_own_minor_units(
    cli: Any,
    runtime: Runtime,
    stripe_api: FakeStripe,
    tmp_path: Path,
    currency: str,
    balance: str,
    unit_amount: str,
) -> None:
    _load(cli, tmp_path, _due(7, currency=currency, amount=balance, balance=balance))
    assert cli("plan").code == 0
    price = stripe_api.created("/v1/prices")[0]
    assert (price["currency"], price["unit_amount"]) == (currency.lower(), unit_amount)


def test_an_amount_stripe_cannot_charge_exactly_is_held_for_a_person_not_rounded(
    cli: Any, runtime: Runtime, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    """Stripe needs a three-decimal amount's last digit to be 0: 5.124 KWD would be cut to
    5.120 KWD (or refused by Stripe); the reminder is held and says why."""
    _load(cli, tmp_path, _due(7, currency="KWD", amount="5.124", balance="5.124"))
    doc = json.loads(cli("plan", "--json").stdout)
    assert doc["reminders"] == []
    assert doc["held"][0]["reason"] == "payment_link_error"
    assert "5.124" in doc["held"][0]["detail"]
    assert "steps of 0.01 KWD" in doc["held"][0]["detail"]
    assert stripe_api.calls == []


def test_several_invoices_each_with_its_own_pay_url_get_no_link_without_stripe(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """Neither invoice's own page pays both: the message says how to pay instead of linking one."""
    _load(
        cli,
        tmp_path,
        _due(7, invoice_number="INV-A", amount="100.00", balance="100.00"),
        _due(7, invoice_number="INV-B", amount="900.00", balance="900.00"),
    )
    with runtime.writing() as session:
        for number in ("INV-A", "INV-B"):
            session.execute(
                update(Invoice)
                .where(Invoice.number == number)
                .values(payment_link=f"https://qbo.example/pay/{number}")
            )
    assert cli("plan").code == 0
    body = _body(runtime)
    assert "INV-A" in body and "INV-B" in body
    assert "qbo.example" not in body
    assert "payment details" in body


def test_several_invoices_sharing_one_pay_url_carry_it_without_stripe(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    _load(cli, tmp_path, _due(7, invoice_number="INV-A"), _due(7, invoice_number="INV-B"))
    with runtime.writing() as session:
        session.execute(update(Invoice).values(payment_link="https://pay.ledger.example/acct/1"))
    assert cli("plan").code == 0
    assert "https://pay.ledger.example/acct/1" in _body(runtime)
