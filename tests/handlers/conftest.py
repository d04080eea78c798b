from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from tests.handlers.posted_plan import ledger, make_plan, post_stored_plan
from tests.support import planned_sqlite
from tests.support.ledger_files import a_week_late


@pytest.fixture
def posted(
    request: pytest.FixtureRequest,
    slack_settings: Settings,
    clock: FixedClock,
    slack_api: Any,
    tmp_path: Path,
) -> Runtime:
    """Today's plan for three customers, posted to the finance channel. On SQLite, when nothing
    has opened the test's database yet, the ledger and the plan are a copy of the database an
    earlier test's same setup left (tests/support/planned_sqlite.py), posted to this test's own
    fake Slack."""
    # every setting but the two that differ per test (the database's file, the fake Slack's port)
    settings = slack_settings.model_dump(exclude={"database_url", "slack_api_url"})

    def make(runtime: Runtime) -> None:
        ledger(runtime, tmp_path)
        make_plan(runtime)

    runtime: Runtime = planned_sqlite.set_up_once(
        slack_settings.database_url,
        f"posted {a_week_late(3)!r} {settings!r} {clock.now().isoformat()}",
        lambda: request.getfixturevalue("slack_runtime"),
        make,
    )
    post_stored_plan(runtime, slack_api)
    return runtime
