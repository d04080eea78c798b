"""A CRM sync that fails is told to the finance channel once, like a ledger source's, and so is
its end: until then the customers keep the tiers and owners of the CRM's last sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Event
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.planning.summary import summary_for
from integrations.errors import SourceError
from integrations.slack_blocks import plan_header_blocks
from integrations.wiring import slack_for
from scheduler.jobs import sync_connected
from tests.support.fake_hubspot import TOKEN, FakeHubSpot, company


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    fake.companies = [company("901", "Ridgeline Roofing", "ridgeline.example")]
    yield fake
    fake.stop()


@pytest.fixture
def with_crm(
    hubspot: FakeHubSpot, database_url: str, slack_api: Any, clock: FixedClock
) -> Iterator[Runtime]:
    settings = load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="s",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        approvers=["U0APPROVER"],
        hubspot_token=TOKEN,
        hubspot_api_url=hubspot.url,
    )
    runtime = start(settings, clock=clock)
    yield runtime
    runtime.close()


def _told(slack_api: Any) -> list[str]:
    return [str(c["text"]) for c in slack_api.calls("chat.postMessage") if "sync" in c["text"]]


def _kinds(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event.kind).where(Event.kind.like("sync.%"))))


def test_a_failing_crm_sync_is_told_once_and_its_recovery_is_told(
    with_crm: Runtime, hubspot: FakeHubSpot, slack_api: Any, clock: FixedClock
) -> None:
    slack = slack_for(with_crm.settings)
    sync_connected(with_crm, slack)
    assert _told(slack_api) == []
    hubspot.token_refused = "expired"  # every sync from now on is refused

    for _ in range(4):
        with pytest.raises(SourceError, match="hubspot"):
            sync_connected(with_crm, slack)
        clock.advance(timedelta(hours=1))

    told = _told(slack_api)
    assert len(told) == 1
    assert "Syncing HubSpot failed" in told[0] and "HUBSPOT_TOKEN" in told[0]
    assert "tier" in told[0] and "owner" in told[0]  # what a CRM's failure leaves out of date
    assert "invoice paid in HubSpot" not in told[0]  # a CRM holds no invoices
    assert [call["channel"] for call in slack_api.calls("chat.postMessage")] == ["C0FINANCE"]
    assert _kinds(with_crm) == ["sync.failed"]
    # the ledger itself is up to date: the plan header does not say it is not
    day = date(2026, 3, 16)
    with with_crm.writing() as session:
        run_plan(session, PlanRules.from_settings(with_crm.settings), day, clock.now(), False)
    with with_crm.sessions() as session:
        assert "Ledger out of date" not in json.dumps(plan_header_blocks(summary_for(session, day)))

    hubspot.token_refused = None
    sync_connected(with_crm, slack)
    sync_connected(with_crm, slack)

    told = _told(slack_api)
    assert len(told) == 2 and "HubSpot syncs again" in told[1]
    assert _kinds(with_crm) == ["sync.failed", "sync.recovered"]
