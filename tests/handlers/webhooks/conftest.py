"""The webhooks' tests share a deployment whose one reminder (as if sent) is on a plan card in
Slack, with the inbound secrets set, served by the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings, load_settings
from bot.ledger.upsert import apply_batch
from bot.planning import posting as plan_posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support import planned_sqlite
from tests.support.fake_http import local_client
from tests.support.inbound_requests import KEY, PUBLIC, SECRET, TODAY, TWILIO_TOKEN
from tests.support.ledger_files import row, write
from tests.support.serving import serve
from tests.support.slack_requests import PATIENCE


@pytest.fixture
def inbound_settings(database_url: str, slack_api: Any) -> Settings:
    return load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        escalation_channel="C0ESCALATE",
        inbound_email_secret=SECRET,
        secret_key=KEY,
        twilio_auth_token=TWILIO_TOKEN,
        public_url=PUBLIC,
    )


@pytest.fixture
def rt(
    inbound_settings: Settings, clock: FixedClock, tmp_path: Path, slack_api: Any
) -> Iterator[Runtime]:
    rows = [
        row(invoice_number="INV-1001", due_date="2026-03-09"),
        row(invoice_number="INV-1002", amount="300.00", balance="300.00", due_date="2026-03-09"),
    ]
    rules = PlanRules.from_settings(inbound_settings)

    def make(runtime: Runtime) -> None:
        with runtime.writing() as session:
            apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
            run_plan(session, rules, TODAY, clock.now(), False)
            reminder = session.scalars(select(Reminder)).one()
            # as if it had gone out: its Message-ID is stored
            reminder.message_id = "<arbot.1.0123456789abcdef@brightwater.example>"

    runtime = planned_sqlite.set_up_once(
        inbound_settings.database_url,
        f"webhooks rt {rows!r} {rules!r} {clock.now().isoformat()}",
        lambda: start(inbound_settings, clock=clock),
        make,
    )
    plan_posting.post_plan(
        runtime, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FINANCE", TODAY
    )
    yield runtime
    runtime.close()


@pytest.fixture
def app(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(rt) as url, local_client(base_url=url, timeout=PATIENCE) as client:
        yield client
