"""Several workspaces on one deployment: where each one's data lives, which settings it gets,
its Slack token sealed at rest, and the command line scoped to one workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import Customer, slack_bots, slack_installations
from bot.core.runtime import Runtime, start
from bot.workspaces import installs
from bot.workspaces.registry import (
    InstalledWorkspace,
    Workspaces,
    check_team_id,
    workspace_database_url,
    workspace_settings,
)
from integrations.slack_install import installation_store
from tests.support.ledger_files import a_week_late
from tests.support.workspace_setup import (
    BETA,
    BETA_CHANNEL,
    BETA_TOKEN,
    beta_rows,
    deployment_settings,
    import_rows,
    install,
)


def _names(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Customer.name).order_by(Customer.name)))


def test_each_workspace_gets_a_file_or_a_schema_of_its_own() -> None:
    assert workspace_database_url("sqlite:////srv/arbot/arbot.db", "T0BETA") == (
        "sqlite:////srv/arbot/arbot.t0beta.db"
    )
    pg = workspace_database_url("postgresql://app@db/arbot", "T0BETA")
    assert "search_path%3Darbot_t0beta" in pg or "search_path=arbot_t0beta" in pg
    nested = workspace_database_url(
        "postgresql://app@db/arbot?options=-csearch_path%3Dacme", "T0ONE"
    )
    assert "acme_t0one" in nested and "csearch_path=acme " not in nested
    with pytest.raises(UserError, match="name a file"):
        workspace_database_url("sqlite://", "T0BETA")


@pytest.mark.parametrize("bad", ["", "t0beta", "T0; DROP SCHEMA public", "T0/../x", "X123"])
def test_only_a_slack_team_id_can_name_a_workspace(bad: str) -> None:
    with pytest.raises(UserError, match="not a Slack workspace id"):
        check_team_id(bad)


def test_a_workspace_takes_nothing_of_the_main_business_from_the_environment(
    database_url: str, slack_api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ARBOT_BUSINESS_NAME=Main Business From Dotenv\n")
    for variable, value in {
        "SMTP_HOST": "smtp.main.example",
        "STRIPE_API_KEY": "sk_main_only",
        "TWILIO_FROM": "+13125550100",
        "ARBOT_APPROVERS": "U0MAIN",
    }.items():
        monkeypatch.setenv(variable, value)
    base = deployment_settings(database_url, slack_api)
    workspace = InstalledWorkspace(BETA, "Beta", BETA_CHANNEL, base.clock().now(), None, "s")
    settings = workspace_settings(base, workspace, {"ARBOT_TIMEZONE": "Europe/Paris"}, "xoxb-b")
    # the business's own: not the main workspace's
    assert settings.smtp_host is None and settings.stripe_api_key is None
    assert settings.twilio_from is None and settings.approvers == []
    assert settings.business_name == "Accounts Receivable"  # the default, not the main's
    # its own, and the deployment's
    assert settings.timezone == "Europe/Paris" and settings.finance_channel == BETA_CHANNEL
    assert settings.slack_api_url == base.slack_api_url
    assert settings.slack_signing_secret == base.slack_signing_secret
    assert settings.public_url == "https://arbot.example.com/w/T0BETA"
    # its own secret: a token signed for one workspace means nothing in another
    assert settings.secret_key is not None and base.secret_key is not None
    assert settings.secret_key.get_secret_value() != base.secret_key.get_secret_value()
    other = workspace_settings(
        base, InstalledWorkspace("T0GAMMA", "G", None, base.clock().now(), None, "s"), {}, None
    )
    assert other.secret_key != settings.secret_key


def test_an_install_stores_the_token_sealed_and_makes_the_workspaces_storage(
    deployment: Any, slack_api: Any
) -> None:
    runtime, workspaces = deployment
    workspace = install(runtime, workspaces, slack_api)
    assert (workspace.team_id, workspace.finance_channel) == (BETA, BETA_CHANNEL)
    with runtime.engine.connect() as connection:
        stored = connection.execute(select(slack_bots.c.bot_token)).scalars().all()
        hook = connection.execute(select(slack_installations.c.incoming_webhook_url)).scalar()
    assert stored and BETA_TOKEN not in stored[0] and stored[0].startswith("gAAAA")
    assert hook is not None and "hooks.slack.com" not in hook
    beta = workspaces.runtime(BETA)
    token = beta.settings.slack_bot_token
    assert token is not None and token.get_secret_value() == BETA_TOKEN
    assert _names(beta) == []  # a database of its own, migrated and empty
    with beta.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM customers")).scalar() == 0


def test_a_workspace_is_opened_with_the_token_slack_sdks_store_finds(
    deployment: Any, slack_api: Any
) -> None:
    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    assert installs.bot_token(runtime, BETA) == BETA_TOKEN
    assert installation_store(runtime).bot_token(BETA) == BETA_TOKEN
    assert installs.bot_token(runtime, "T0NEVER") is None


def test_a_token_sealed_under_another_key_is_refused_with_a_message(
    deployment: Any, slack_api: Any, database_url: str, clock: FixedClock
) -> None:
    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    other = start(deployment_settings(database_url, slack_api, secret_key="another"), clock=clock)
    try:
        with pytest.raises(UserError, match="ARBOT_SECRET_KEY"):
            Workspaces(other).runtime(BETA)
    finally:
        other.close()


def test_an_install_needs_the_secret_key_before_anything_is_stored(
    database_url: str, slack_api: Any, clock: FixedClock
) -> None:
    runtime = start(deployment_settings(database_url, slack_api, secret_key=None), clock=clock)
    try:
        with pytest.raises(UserError, match="ARBOT_SECRET_KEY is not set"):
            install(runtime, Workspaces(runtime), slack_api)
        with runtime.engine.connect() as connection:
            assert connection.execute(select(slack_bots.c.id)).first() is None
    finally:
        runtime.close()


def test_the_data_of_one_workspace_is_not_seen_from_another(
    deployment: Any, slack_api: Any, tmp_path: Path
) -> None:
    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    import_rows(runtime, tmp_path, a_week_late(2))
    import_rows(workspaces.runtime(BETA), tmp_path, beta_rows())
    assert _names(runtime) == ["Customer 1", "Customer 2"]
    assert _names(workspaces.runtime(BETA)) == ["Beta Only Co"]


def test_settings_are_checked_as_a_whole_and_stored_sealed(deployment: Any, slack_api: Any) -> None:
    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    workspaces.set_settings(BETA, {"SMTP_HOST": "smtp.beta.example", "SMTP_PASSWORD": "pw-beta"})
    with pytest.raises(UserError, match="ARBOT_TIMEZONE"):
        workspaces.set_settings(BETA, {"ARBOT_TIMEZONE": "Mars/Base", "SMTP_PORT": "2525"})
    assert workspaces.own_settings(BETA) == {
        "SMTP_HOST": "smtp.beta.example",
        "SMTP_PASSWORD": "pw-beta",
    }
    with runtime.engine.connect() as connection:
        sealed = connection.execute(text("SELECT settings_sealed FROM workspaces")).scalar()
    assert "pw-beta" not in sealed and "smtp.beta" not in sealed
    assert workspaces.runtime(BETA).settings.smtp_host == "smtp.beta.example"
    with pytest.raises(UserError, match="belongs to the whole deployment"):
        workspaces.set_settings(BETA, {"DATABASE_URL": "sqlite:///elsewhere.db"})


def test_the_command_line_works_on_the_workspace_arbot_workspace_names(
    cli: Any,
    database_url: str,
    slack_api: Any,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.ledger_files import write

    monkeypatch.setenv("ARBOT_SECRET_KEY", "deployment-secret-key")
    monkeypatch.setenv("SLACK_CLIENT_ID", slack_api.client_id)
    monkeypatch.setenv("SLACK_CLIENT_SECRET", slack_api.client_secret)
    monkeypatch.setenv("SLACK_API_URL", slack_api.url)
    monkeypatch.setenv("ARBOT_PUBLIC_URL", "https://arbot.example.com")
    runtime = start(deployment_settings(database_url, slack_api), clock=clock)
    install(runtime, Workspaces(runtime), slack_api)
    runtime.close()

    main_file = write(tmp_path / "main.csv", a_week_late(2))
    beta_file = write(tmp_path / "beta.csv", beta_rows())
    assert cli("import-csv", str(main_file)).code == 0
    monkeypatch.setenv("ARBOT_WORKSPACE", BETA)
    assert cli("import-csv", str(beta_file)).code == 0
    beta_status = cli("status", "Beta Only")
    assert beta_status.code == 0 and "BETA-1" in beta_status.stdout
    assert "Customer 1" not in cli("aging").stdout
    monkeypatch.delenv("ARBOT_WORKSPACE")
    main_aging = cli("aging").stdout
    assert "Beta Only" not in main_aging
    missing = cli("status", "Beta Only")
    assert "BETA-1" not in missing.stdout

    monkeypatch.setenv("ARBOT_WORKSPACE", "T0NOPE")
    refused = cli("aging")
    assert refused.code == 1 and "T0NOPE is not installed" in refused.stderr
    monkeypatch.delenv("ARBOT_WORKSPACE")

    listed = cli("workspace", "list")
    assert BETA in listed.stdout and BETA_CHANNEL in listed.stdout and "active" in listed.stdout
    done = cli("workspace", "set", BETA, "ARBOT_TIMEZONE=Europe/Paris", "SMTP_PASSWORD=pw")
    assert done.code == 0 and "SMTP_PASSWORD=•••• (set)" in done.stdout
    shown = cli("workspace", "show", BETA).stdout
    assert "ARBOT_TIMEZONE=Europe/Paris" in shown and "pw" not in shown.replace("SMTP_PASSWORD", "")
    bad = cli("workspace", "set", BETA, "ARBOT_SEND_WINDOW=late")
    assert bad.code == 1 and "ARBOT_SEND_WINDOW" in bad.stderr
    assert "ARBOT_SEND_WINDOW" not in cli("workspace", "show", BETA).stdout
    assert cli("workspace", "unset", BETA, "SMTP_PASSWORD").code == 0
    assert "SMTP_PASSWORD" not in cli("workspace", "show", BETA).stdout
    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0 and f"Workspace {BETA}: up to date" in upgraded.stdout

    # simulate follows the workspace's rules: its day starts in its own timezone
    assert cli("workspace", "set", BETA, "ARBOT_TIMEZONE=Pacific/Kiritimati").code == 0
    monkeypatch.setenv("ARBOT_WORKSPACE", BETA)
    simulated = cli("simulate", "--days", "1", "--customers", "3", "--seeds", "1", "--workers", "1")
    assert simulated.code == 0 and "(2026-03-17 to 2026-03-17)" in simulated.stdout


def test_a_workspaces_secrets_are_masked_in_the_log_once_it_is_opened(
    deployment: Any, slack_api: Any
) -> None:
    import io
    import logging

    from bot.core.logs import setup_logging

    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    workspaces.set_settings(BETA, {"SMTP_PASSWORD": "beta-smtp-password"})
    stream = io.StringIO()
    handler = setup_logging(json=False, stream=stream)
    try:
        workspaces.runtime(BETA)
        logging.getLogger("arbot.test").error(
            "login failed with beta-smtp-password, %s", BETA_TOKEN
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert "beta-smtp-password" not in stream.getvalue() and BETA_TOKEN not in stream.getvalue()
    assert "login failed with" in stream.getvalue()


def test_a_setting_a_workspace_cannot_have_is_refused_by_name(
    deployment: Any, slack_api: Any
) -> None:
    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    with pytest.raises(UserError, match="SLACK_APP_TOKEN is for the main workspace only"):
        workspaces.set_settings(BETA, {"SLACK_APP_TOKEN": "xapp-1"})
    with pytest.raises(UserError, match="SMTP_HOSTNAME: no such setting"):
        workspaces.set_settings(BETA, {"SMTP_HOSTNAME": "smtp.beta.example"})
    assert workspaces.own_settings(BETA) == {}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_workspaces_ledger_lock_never_holds_up_anothers(
    deployment: Any, slack_api: Any
) -> None:
    from bot.core.locks import serialise_ledger_writes

    runtime, workspaces = deployment
    install(runtime, workspaces, slack_api)
    beta = workspaces.runtime(BETA)
    with runtime.writing() as held, beta.writing() as other:
        serialise_ledger_writes(held)  # the main workspace's import holds its lock
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        serialise_ledger_writes(other)  # Beta's would time out if the lock were shared
        with runtime.writes() as third:  # ... while the main one's own is really held
            third.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(Exception, match="lock timeout"):
                serialise_ledger_writes(third)
            third.rollback()
