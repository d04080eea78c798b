"""Each installed workspace gets the scheduled jobs, on its own data, token and channel; they
start when it is installed and stop when it leaves, and one workspace's bad settings stop only
its own jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime, start
from bot.workspaces.registry import Workspaces
from scheduler.jobs import workspace_jobs
from scheduler.runner import start_runner
from tests.support.slack_requests import wait_for
from tests.support.workspace_setup import (
    BETA,
    BETA_CHANNEL,
    beta_rows,
    deployment_settings,
    import_rows,
    install,
)

GAMMA = "T0GAMMA"


@pytest.fixture
def deployment(
    database_url: str, slack_api: Any, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, Workspaces]]:
    monkeypatch.setenv("ARBOT_LEADER_POLL_SECONDS", "0.2")
    main = start(deployment_settings(database_url, slack_api, smtp_host=None), clock=clock)
    workspaces = Workspaces(main)
    yield main, workspaces
    workspaces.close()
    main.close()


def test_every_installed_workspace_has_the_jobs_under_its_own_name(
    deployment: tuple[Runtime, Workspaces], slack_api: Any
) -> None:
    main, workspaces = deployment
    install(main, workspaces, slack_api)
    install(main, workspaces, slack_api, team=GAMMA, token="xoxb-gamma", channel="C0GAMMA")
    workspaces.set_settings(GAMMA, {"ARBOT_WEEKLY_REVIEW_DAY": "someday"})
    names = {job.name for job in workspace_jobs(workspaces, "test")}
    assert {"morning_plan@T0BETA", "sync@T0BETA", "sweep@T0BETA"} <= names
    assert not any(name.endswith(f"@{GAMMA}") for name in names)  # bad settings: its own only


@pytest.mark.slow  # two installed workspaces' whole morning plans
def test_the_leader_runs_each_workspaces_morning_plan_in_its_own_channel(
    deployment: tuple[Runtime, Workspaces], slack_api: Any, tmp_path: Path
) -> None:
    main, workspaces = deployment
    install(main, workspaces, slack_api)
    workspaces.set_settings(BETA, {"ARBOT_TIMEZONE": "America/New_York"})
    import_rows(workspaces.runtime(BETA), tmp_path, beta_rows())
    runner = start_runner(main, None, "replica-1", workspaces=workspaces)
    try:
        posted = wait_for(
            lambda: [
                r
                for r in slack_api.records("chat.postMessage")
                if str(r["params"].get("text", "")).startswith("Collections plan for 2026-03-16")
            ],
        )
        assert [(r["team"], r["params"]["channel"]) for r in posted] == [(BETA, BETA_CHANNEL)]
        done = wait_for(lambda: runner.status().jobs.get("morning_plan@T0BETA"))
        assert done.error is None and "posted" in (done.outcome or "")

        workspaces.record_uninstall(BETA)
        wait_for(lambda: runner._scheduler.get_job("morning_plan@T0BETA") is None)
    finally:
        runner.stop()
