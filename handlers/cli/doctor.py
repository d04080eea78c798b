"""`arbot doctor`: the configured integrations checked live, one line each (OK, a problem in
words, or not configured), exit code 1 when something configured is broken; `--json` for
scripts. The checks are in integrations/doctor/."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from handlers.cli.app import Json, out, print_json

if TYPE_CHECKING:
    from bot.core.runtime import Runtime
    from bot.core.settings import Settings
    from integrations.doctor.findings import Check, Finding

MARKS = {"ok": "OK", "problem": "PROBLEM", "not_configured": "--"}


def doctor_command(
    json_out: Json = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, max=120, help="Seconds each check may take."),
    ] = 10,
) -> None:
    """Check each configured integration live (Slack, mail, Twilio, Stripe, ledger sources, CRMs,
    the database) and say what is wrong; sends nothing."""
    from bot.core.runtime import start
    from bot.core.settings import load_settings
    from bot.workspaces.registry import open_runtime
    from integrations.doctor.database import check_database
    from integrations.doctor.findings import run_checks

    settings = load_settings()
    database = check_database(settings.database_url)
    reachable = all(f.status == "ok" for f in database)
    # A workspace's settings are in the database; the main deployment's runtime is not migrated
    # here (the database check reports a schema behind; `arbot db upgrade` brings it up).
    runtime = (
        open_runtime(settings)
        if settings.workspace and reachable
        else start(settings, upgrade=False)
    )
    try:
        findings = database + run_checks(_checks(runtime, reachable, timeout), timeout)
    finally:
        runtime.close()
    broken = [f for f in findings if f.status == "problem"]
    if json_out:
        print_json({"ok": not broken, "checks": [f.as_json() for f in findings]})
    else:
        _print(findings)
    if broken:
        raise typer.Exit(1)


def _checks(runtime: Runtime, database_ok: bool, timeout: float) -> list[Check]:
    from bot.ledger.source_tokens import DatabaseTokenStore
    from integrations.doctor.findings import Check
    from integrations.doctor.mail import check_imap, check_smtp
    from integrations.doctor.services import check_stripe, check_twilio
    from integrations.doctor.sources import (
        LABELS,
        check_hubspot,
        check_ledger_source,
        check_pipedrive,
    )

    settings = runtime.settings
    checks = [
        Check("Slack", lambda: _slack(runtime, timeout)),
        Check("SMTP", lambda: check_smtp(settings, runtime, timeout)),
        Check("IMAP", lambda: check_imap(settings, runtime, timeout)),
        Check("Twilio", lambda: check_twilio(settings, timeout)),
        Check("Stripe", lambda: check_stripe(settings, timeout)),
    ]
    for name, label in LABELS.items():
        if database_ok:
            run = partial(
                check_ledger_source,
                settings,
                name,
                partial(DatabaseTokenStore, runtime),
                runtime.clock.now,
                timeout,
            )
        else:  # the grants are kept in the database
            run = partial(_unread, settings, name, label)
        checks.append(Check(label, run))
    checks += [
        Check("HubSpot", lambda: check_hubspot(settings, timeout)),
        Check("Pipedrive", lambda: check_pipedrive(settings, timeout)),
    ]
    return checks


def _unread(settings: Settings, name: str, label: str) -> list[Finding]:
    from integrations.doctor.findings import not_configured, problem

    if not getattr(settings, f"{name}_client_id"):
        return [not_configured(label, f"not connected (`arbot connect {name}`)")]
    return [
        problem(
            label,
            "grant",
            "not checked: the grant is kept in the database, which is not ready (see Database)",
        )
    ]


def _slack(runtime: Runtime, timeout: float) -> list[Finding]:
    from bot.core.slack_access import SlackAccess
    from integrations.doctor.findings import not_configured, problem
    from integrations.doctor.slack import check_slack

    settings = runtime.settings
    if not settings.slack_bot_token:
        return [
            not_configured(
                "Slack", "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (see the Slack set-up guide)"
            )
        ]
    channels = {
        "ARBOT_FINANCE_CHANNEL": settings.finance_channel,
        "ARBOT_ESCALATION_CHANNEL": settings.escalation_channel,
    }
    token = settings.slack_bot_token.get_secret_value()
    refusal = SlackAccess(settings.database_url, token).refusal()
    found = check_slack(token, settings.slack_api_url, channels, timeout, refusal)
    if not (settings.slack_signing_secret or settings.slack_app_token):
        unsigned = (
            "SLACK_SIGNING_SECRET is unset, so every button, form and /ar from Slack is refused: "
            "copy the Signing Secret from the app's Basic Information page"
        )
        found.insert(0, problem("Slack", "signing", unsigned))
    if not settings.finance_channel:
        found.append(
            problem(
                "Slack", "channel", "set ARBOT_FINANCE_CHANNEL to the id of the finance channel"
            )
        )
    return found + _refused(runtime)


def _refused(runtime: Runtime) -> list[Finding]:
    """What Slack is owed (redraws, histories, thread notes, escalations, Stripe notices) and
    keeps refusing for a reason no retry changes: one problem for each channel and answer, with
    what to do."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.core.slack_refusals import waiting
    from integrations.doctor.findings import problem

    try:
        with runtime.sessions() as session:
            refused = waiting(session)
    except SQLAlchemyError:  # the Database check says what is wrong with it
        return []
    counts: dict[tuple[str, str], int] = {}
    to_do: dict[str, str] = {}
    for one in refused:
        key = (one.channel, one.error)
        counts[key] = counts.get(key, 0) + 1
        to_do[one.error] = one.to_do
    return [
        problem(
            "Slack",
            "refused",
            f"Slack keeps refusing {count} message(s) owed in {channel} ({error}): "
            f"{to_do[error]}; the sweep sends them once it takes them",
        )
        for (channel, error), count in counts.items()
    ]


def _print(findings: list[Finding]) -> None:
    console = out()
    for finding in findings:
        mark = MARKS[finding.status]
        console.print(
            f"{mark:<8} {finding.integration}: {finding.message}", markup=False, soft_wrap=True
        )
    counts = {s: sum(f.status == s for f in findings) for s in MARKS}
    console.print(
        f"{counts['problem']} problem(s), {counts['ok']} OK, {counts['not_configured']} not "
        "configured.",
        markup=False,
    )
