"""Payment links: the ledger's own, else one Stripe link per set of invoices, made once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
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
