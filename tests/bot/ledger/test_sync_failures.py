"""A sync that fails is told to the finance channel once, with what to do, and so is its end:
until then the plan works from a ledger that may be out of date."""

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
from bot.ledger.source_tokens import DatabaseTokenStore
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.planning.summary import summary_for
from integrations.base.ledger import Tokens
from integrations.errors import SourceError
from integrations.slack_blocks import plan_header_blocks
from integrations.wiring import slack_for
from scheduler.jobs import sync_connected
from tests.bot.ledger import test_sync
from tests.support.fake_quickbooks import REALM, FakeQuickBooks

qb = test_sync.qb  # the QuickBooks fake with Amy's 1037 and Bill's 1038
DAY = date(2026, 3, 16)


@pytest.fixture
def connected(
    qb: FakeQuickBooks, database_url: str, slack_api: Any, clock: FixedClock
) -> Iterator[Runtime]:
    settings = load_settings(
        env_file=None,
        database_url=database_url,
        secret_key=test_sync.KEY,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="s",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        approvers=["U0APPROVER"],
    )
    runtime = start(settings, clock=clock)
    DatabaseTokenStore(runtime).save(
        "quickbooks", Tokens("qb-access-0", "qb-refresh-0", clock.now() + timedelta(hours=1), REALM)
    )
    yield runtime
    runtime.close()


def _told(slack_api: Any) -> list[str]:
    return [str(c["text"]) for c in slack_api.calls("chat.postMessage") if "sync" in c["text"]]


def _kinds(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event.kind).where(Event.kind.like("sync.%"))))


def test_a_revoked_grant_is_told_once_with_the_command_to_run_and_its_end_is_told(
    connected: Runtime, qb: FakeQuickBooks, slack_api: Any, clock: FixedClock
) -> None:
    slack = slack_for(connected.settings)
    assert sync_connected(connected, slack) == "quickbooks: 2 new, 0 changed"
    # the company disconnects arbot in QuickBooks: every sync from now on is refused
    qb.tokens.refresh_token = "revoked"
    qb.tokens.expire_access()

    for _ in range(3):
        with pytest.raises(SourceError):
            sync_connected(connected, slack)
        clock.advance(timedelta(hours=1))

    told = _told(slack_api)
    assert len(told) == 1
    assert "Syncing QuickBooks failed" in told[0]
    assert "run `arbot connect quickbooks` again" in told[0]
    assert "as of its last sync (2026-03-16 10:00 America/New_York)" in told[0]
    assert [call["channel"] for call in slack_api.calls("chat.postMessage")] == ["C0FINANCE"]
    assert _kinds(connected) == ["sync.failed"]

    # `arbot connect quickbooks` again: a new grant
    qb.tokens.valid_access = {"qb-access-new"}
    qb.tokens.refresh_token = "qb-refresh-new"
    DatabaseTokenStore(connected).save(
        "quickbooks",
        Tokens("qb-access-new", "qb-refresh-new", clock.now() + timedelta(hours=1), REALM),
    )
    assert sync_connected(connected, slack).startswith("quickbooks:")
    assert sync_connected(connected, slack).startswith("quickbooks:")

    told = _told(slack_api)
    assert len(told) == 2
    assert "QuickBooks syncs again" in told[1] and "2026-03-16 10:00" in told[1]
    assert _kinds(connected) == ["sync.failed", "sync.recovered"]


def test_an_outage_is_told_only_once_it_has_lasted(
    connected: Runtime, qb: FakeQuickBooks, slack_api: Any, clock: FixedClock
) -> None:
    slack = slack_for(connected.settings)
    assert sync_connected(connected, slack) == "quickbooks: 2 new, 0 changed"
    for _ in range(2):  # QuickBooks asks to wait an hour: the next sync may well work
        qb.retry_after = "3600"
        with pytest.raises(SourceError):
            sync_connected(connected, slack)
        clock.advance(timedelta(hours=1))
    assert _told(slack_api) == [] and _kinds(connected) == []

    for _ in range(2):  # two hours after the first failure it is still failing
        qb.retry_after = "3600"
        with pytest.raises(SourceError):
            sync_connected(connected, slack)
        clock.advance(timedelta(hours=1))
    told = _told(slack_api)
    assert len(told) == 1 and "Syncing QuickBooks failed" in told[0]
    assert _kinds(connected) == ["sync.failed"]

    assert sync_connected(connected, slack).startswith("quickbooks:")
    assert len(_told(slack_api)) == 2 and _kinds(connected) == ["sync.failed", "sync.recovered"]


def test_a_failure_that_passes_before_it_lasts_is_never_told(
    connected: Runtime, qb: FakeQuickBooks, slack_api: Any
) -> None:
    slack = slack_for(connected.settings)
    qb.retry_after = "3600"
    with pytest.raises(SourceError):
        sync_connected(connected, slack)
    assert sync_connected(connected, slack) == "quickbooks: 2 new, 0 changed"
    assert _told(slack_api) == [] and _kinds(connected) == []


def test_while_a_failure_is_told_the_plan_header_says_the_ledger_is_out_of_date(
    connected: Runtime, qb: FakeQuickBooks, clock: FixedClock
) -> None:
    slack = slack_for(connected.settings)
    assert sync_connected(connected, slack) == "quickbooks: 2 new, 0 changed"
    qb.tokens.refresh_token = "revoked"
    qb.tokens.expire_access()
    with pytest.raises(SourceError):
        sync_connected(connected, slack)

    with connected.writing() as session:
        run_plan(session, PlanRules.from_settings(connected.settings), DAY, clock.now(), False)
    with connected.sessions() as session:
        header = json.dumps(plan_header_blocks(summary_for(session, DAY)))
    assert "Ledger out of date" in header
    assert "QuickBooks has not synced since 2026-03-16 10:00 America/New_York" in header
    assert "run `arbot connect quickbooks` again" in header

    qb.tokens.valid_access = {"qb-access-new"}
    qb.tokens.refresh_token = "qb-refresh-new"
    DatabaseTokenStore(connected).save(
        "quickbooks",
        Tokens("qb-access-new", "qb-refresh-new", clock.now() + timedelta(hours=1), REALM),
    )
    sync_connected(connected, slack)
    with connected.sessions() as session:
        header = json.dumps(plan_header_blocks(summary_for(session, DAY)))
    assert "Ledger out of date" not in header
