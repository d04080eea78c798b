"""Which jobs a configuration runs and where, settings that are wrong said before anything
starts, and the hourly sync: nothing without a connected source, the whole `arbot sync` with one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.core.errors import UserError
from bot.core.models import Invoice, SyncState
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from bot.ledger.source_tokens import DatabaseTokenStore
from integrations.base.ledger import Tokens
from integrations.slack_chat import SlackChat
from scheduler.jobs import declare_jobs, sync_connected
from tests.support.fake_quickbooks import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    FakeQuickBooks,
    customer,
    invoice,
)

KEY = "scheduler-test-secret-key-0123456789"


def _where(runtime: Runtime, slack: SlackChat | None) -> dict[str, bool]:
    return {j.name: j.leader_only for j in declare_jobs(runtime, slack, "t:1")}


def test_the_send_worker_runs_on_every_replica_and_the_other_jobs_on_the_leader(
    slack_settings: Settings, slack_chat: SlackChat
) -> None:
    sending = slack_settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "from_email": "ar@b.example",
            "secret_key": SecretStr(KEY),
        }
    )
    runtime = start(sending)
    try:
        assert _where(runtime, slack_chat) == {
            "send": False,
            "morning_plan": True,
            "sync": True,
            "sweep": True,
            "weekly_review": True,
        }
    finally:
        runtime.close()


def test_without_smtp_nothing_is_sent_and_without_slack_no_review_is_posted(
    runtime: Runtime,
) -> None:
    assert _where(runtime, None) == {"morning_plan": True, "sync": True, "sweep": True}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("holidays_country", "XX", "ARBOT_HOLIDAYS: 'XX' is not a country"),
        ("holidays_country", "US-ZZ", "ARBOT_HOLIDAYS: 'US-ZZ' is not a country"),
        ("weekly_review_day", "someday", "ARBOT_WEEKLY_REVIEW_DAY: 'someday' is not a day"),
    ],
)
def test_a_bad_schedule_setting_is_named_before_anything_starts(
    settings: Settings, setting: str, value: str, message: str
) -> None:
    runtime = start(settings.model_copy(update={setting: value}))
    try:
        with pytest.raises(UserError, match=message):
            declare_jobs(runtime, None, "t:1")
    finally:
        runtime.close()


def test_the_sync_job_does_nothing_while_no_source_is_connected(runtime: Runtime) -> None:
    assert sync_connected(runtime, None) == "no source connected"
    with runtime.sessions() as session:
        assert session.scalars(select(SyncState)).all() == []


@pytest.fixture
def quickbooks() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    fake.customers = [customer("1", "Amy's Bird Sanctuary", "birds@amy.example", "(650) 555-3311")]
    fake.invoices = [invoice("130", "1", "1037", 362.07, 362.07, due="2026-03-09")]
    yield fake
    fake.stop()


def test_the_sync_job_pulls_each_connected_source_into_the_ledger(
    settings: Settings, quickbooks: FakeQuickBooks
) -> None:
    connected = settings.model_copy(
        update={
            "secret_key": SecretStr(KEY),
            "quickbooks_client_id": CLIENT_ID,
            "quickbooks_client_secret": SecretStr(CLIENT_SECRET),
            "quickbooks_api_url": quickbooks.url,
            "quickbooks_token_url": quickbooks.token_url,
        }
    )
    runtime = start(connected)
    try:
        now = runtime.clock.now()
        DatabaseTokenStore(runtime).save(
            "quickbooks",
            Tokens("qb-access-0", "qb-refresh-0", now + timedelta(hours=1), tenant_id=REALM),
        )

        outcome = sync_connected(runtime, None)

        assert outcome == "quickbooks: 1 new, 0 changed"
        with runtime.sessions() as session:
            assert session.execute(select(Invoice.number, Invoice.balance)).all() == [
                ("1037", Decimal("362.07"))
            ]
            state = session.get(SyncState, "quickbooks")
        assert state is not None and state.synced_at is not None
    finally:
        runtime.close()
