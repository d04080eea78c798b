"""Plan the day as one flow: the plan is stored in one write transaction, and no network call
(Stripe's payment links, Slack's posts) happens while that transaction is open."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.core.models import PaymentLink, Reminder
from bot.core.runtime import Runtime
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from integrations.stripe_links import StripeLinks
from tests.support.fake_stripe import FakeStripe
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)


class WriteProbe:
    """Asks SQLite, from a connection of its own, whether anyone holds the write lock: a call
    made inside an open write transaction (BEGIN IMMEDIATE) is recorded by name."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.inside_write: list[str] = []
        self.calls: list[str] = []

    def check(self, call: str) -> None:
        self.calls.append(call)
        connection = sqlite3.connect(self.database, timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.rollback()
        except sqlite3.OperationalError:
            self.inside_write.append(call)
        finally:
            connection.close()


class Probed:
    """The real adapter, checked by the probe before each call goes out."""

    def __init__(self, real: Any, probe: WriteProbe) -> None:
        self._real = real
        self._probe = probe

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if not callable(attribute):
            return attribute

        def called(*args: Any, **kwargs: Any) -> Any:
            self._probe.check(f"{type(self._real).__name__}.{name}")
            return attribute(*args, **kwargs)

        return called


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: the probe asks SQLite for its write lock."""
    path = tmp_path / "arbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def probe(slack_runtime: Runtime) -> WriteProbe:
    database = make_url(slack_runtime.settings.database_url).database
    assert database is not None
    return WriteProbe(database)


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


def test_the_probe_sees_a_write_transaction(slack_runtime: Runtime, probe: WriteProbe) -> None:
    probe.check("outside")
    with slack_runtime.writing() as session:
        session.execute(select(func.count()).select_from(Reminder))
        probe.check("inside")
    assert probe.inside_write == ["inside"]


def test_plan_day_makes_links_and_posts_only_outside_the_write_transaction(
    cli: Any,
    slack_runtime: Runtime,
    slack_api: Any,
    stripe_api: FakeStripe,
    probe: WriteProbe,
    tmp_path: Path,
) -> None:
    _ledger(cli, tmp_path)
    links = Probed(StripeLinks("sk_test_arbot", stripe_api.url), probe)
    slack = Probed(SlackChat(web_client("xoxb-test", slack_api.url)), probe)

    done = plan_day(slack_runtime, TODAY, links=links, slack=slack)

    assert done.posted_to == "C0FINANCE"
    assert probe.calls.count("StripeLinks.create") == 3
    assert "SlackChat.post_plan" in probe.calls
    assert probe.inside_write == []
    with slack_runtime.sessions() as session:
        bodies = session.scalars(select(Reminder.body_text)).all()
        stored_links = session.scalars(select(PaymentLink.url)).all()
    assert len(bodies) == 3 and len(stored_links) == 3
    assert all(any(url in (body or "") for url in stored_links) for body in bodies)


def test_a_second_plan_of_the_day_makes_no_new_link_and_stores_nothing_new(
    cli: Any,
    slack_runtime: Runtime,
    stripe_api: FakeStripe,
    probe: WriteProbe,
    tmp_path: Path,
) -> None:
    _ledger(cli, tmp_path)
    links = Probed(StripeLinks("sk_test_arbot", stripe_api.url), probe)
    first = plan_day(slack_runtime, TODAY, links=links, slack=None)
    second = plan_day(slack_runtime, TODAY, links=links, slack=None)
    assert len(first.run.reminder_ids) == 3
    assert probe.calls.count("StripeLinks.create") == 3  # the live links are reused
    with slack_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 3
        assert session.scalar(select(func.count()).select_from(PaymentLink)) == 3
    assert second.posted_to is None
