"""Plan the day as one flow: the plan is stored in one write transaction, and no network call
(Stripe's payment links, Slack's posts) happens while that transaction is open. The local fakes
report each call to a WriteWatch (tests/support/write_watch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.models import PaymentLink, Reminder
from bot.core.runtime import Runtime
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from integrations.stripe_links import StripeLinks
from tests.support.fake_stripe import FakeStripe
from tests.support.ledger_files import row, write
from tests.support.write_watch import WriteWatch

TODAY = date(2026, 3, 16)


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def watch(slack_api: Any, stripe_api: FakeStripe) -> Iterator[WriteWatch]:
    with WriteWatch() as watching:
        slack_api.on_call = watching.called
        stripe_api.on_call = watching.called
        yield watching
        slack_api.on_call = stripe_api.on_call = None


def _ledger(cli: Any, tmp_path: Path) -> None:
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Customer {n}",
            email=f"ap@c{n}.example",
            invoice_number=f"INV-{n}",
            issue_date="2026-01-01",
            due_date=(TODAY - timedelta(days=7)).isoformat(),
            amount="1200.00",
            balance="1200.00",
        )
        for n in range(3)
    ]
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0


def test_the_watch_sees_a_call_made_inside_a_write_transaction(
    slack_runtime: Runtime, watch: WriteWatch
) -> None:
    watch.called("outside")
    with slack_runtime.writing() as session:
        session.execute(select(func.count()).select_from(Reminder))
        watch.called("inside")
    assert [breach.split(" while ")[0] for breach in watch.breaches] == ["inside"]


def test_plan_day_makes_links_and_posts_only_outside_the_write_transaction(
    cli: Any,
    slack_runtime: Runtime,
    slack_api: Any,
    stripe_api: FakeStripe,
    watch: WriteWatch,
    tmp_path: Path,
) -> None:
    _ledger(cli, tmp_path)
    links = StripeLinks("sk_test_arbot", stripe_api.url)
    slack = SlackChat(web_client("xoxb-test", slack_api.url))

    done = plan_day(slack_runtime, TODAY, links=links, slack=slack)

    assert done.posted_to == "C0FINANCE"
    assert watch.calls.count("Stripe POST /v1/payment_links") == 3
    assert "Slack chat.postMessage" in watch.calls
    assert watch.breaches == []
    with slack_runtime.sessions() as session:
        bodies = session.scalars(select(Reminder.body_text)).all()
        stored_links = session.scalars(select(PaymentLink.url)).all()
    assert len(bodies) == 3 and len(stored_links) == 3
    assert all(any(url in (body or "") for url in stored_links) for body in bodies)


def test_a_second_plan_of_the_day_makes_no_new_link_and_stores_nothing_new(
    cli: Any,
    slack_runtime: Runtime,
    stripe_api: FakeStripe,
    watch: WriteWatch,
    tmp_path: Path,
) -> None:
    _ledger(cli, tmp_path)
    links = StripeLinks("sk_test_arbot", stripe_api.url)
    first = plan_day(slack_runtime, TODAY, links=links, slack=None)
    second = plan_day(slack_runtime, TODAY, links=links, slack=None)
    assert len(first.run.reminder_ids) == 3
    assert watch.calls.count("Stripe POST /v1/payment_links") == 3  # the live links are reused
    with slack_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 3
        assert session.scalar(select(func.count()).select_from(PaymentLink)) == 3
    assert second.posted_to is None
    assert watch.breaches == []
