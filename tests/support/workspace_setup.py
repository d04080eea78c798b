"""A deployment serving several workspaces, for tests: its settings, and an install done the way
Slack does it (a one-time code traded through the local fake Slack's oauth.v2.access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.core.runtime import Runtime
from bot.core.settings import Settings, load_settings
from bot.ledger.upsert import apply_batch
from bot.workspaces.flows import complete_install
from bot.workspaces.registry import InstalledWorkspace, Workspaces, workspace_database_url
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_install import SlackInstaller
from tests.support.kept_schemas import take_spare
from tests.support.ledger_files import row, write
from tests.support.migrated_sqlite import copy_migrated

BETA = "T0BETA"
BETA_TOKEN = "xoxb-beta"
BETA_CHANNEL = "C0BETAFIN"


def deployment_settings(database_url: str, slack_api: Any, **more: Any) -> Settings:
    """The main workspace (SLACK_BOT_TOKEN, T0TEST) plus what installing others needs."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "timezone": "America/New_York",
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": "test-signing-secret",
        "slack_api_url": slack_api.url,
        "finance_channel": "C0FINANCE",
        "approvers": ["U0APPROVER", "U0SECOND"],
        "business_name": "Brightwater Supply Co.",
        "slack_client_id": slack_api.client_id,
        "slack_client_secret": slack_api.client_secret,
        "secret_key": "deployment-secret-key",
        "public_url": "https://arbot.example.com",
        "smtp_host": "smtp.brightwater.example",
        "stripe_api_key": "sk_test_brightwater",
    }
    values.update(more)
    return load_settings(env_file=None, **values)


def install(
    main: Runtime,
    workspaces: Workspaces,
    slack_api: Any,
    team: str = BETA,
    token: str = BETA_TOKEN,
    channel: str = BETA_CHANNEL,
) -> InstalledWorkspace:
    """Install `team` as Slack would; on SQLite its file starts as a copy of a migrated one
    (tests/support/migrated_sqlite.py), on PostgreSQL its schema as the one an earlier test
    left migrated and emptied, when there is one (tests/support/kept_schemas.py)."""
    if main.engine.dialect.name == "sqlite":
        own = make_url(workspace_database_url(main.settings.database_url, team)).database
        if own and not Path(own).exists():
            copy_migrated(Path(own))
    else:
        take_spare(main, team)
    code = f"code-{team}"
    slack_api.grant(code, team, token, channel=channel)
    return complete_install(workspaces, SlackInstaller(main), code).workspace


def import_rows(runtime: Runtime, tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = write(tmp_path / f"ledger-{id(rows)}.csv", rows)
    batch = read_ledger_csv(path)
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())


def beta_rows() -> list[dict[str, str]]:
    """Beta's own customer: one invoice a week late on 2026-03-16."""
    return [
        row(
            customer_id="B-1",
            customer_name="Beta Only Co",
            email="ap@betaonly.example",
            invoice_number="BETA-1",
            issue_date="2026-01-01",
            due_date="2026-03-09",
            amount="900.00",
            balance="900.00",
        )
    ]
