"""CLI commands for what comes in: `import-payments` (a bank-feed CSV) and `poll-inbox`
(replies from an IMAP mailbox). Registered on the main `arbot` app by handlers/cli/main.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bot.core.errors import UserError
from handlers.cli.app import out


def import_payments_command(
    path: Annotated[
        Path, typer.Argument(help="The bank export: date, amount, currency, reference, payer.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Match bank payments to open invoices. Exactly one match: applied; else a person picks in Slack."""
    from bot.core.money import decimal_str
    from bot.core.settings import load_settings
    from bot.payments.flows import receive_bank_payments
    from bot.workspaces.registry import open_runtime
    from integrations.csv_payments import read_payments
    from integrations.wiring import links_for, slack_for

    payments = read_payments(path)
    runtime = open_runtime(load_settings())
    try:
        summary, notes = receive_bank_payments(
            runtime,
            payments,
            path.name,
            slack=slack_for(runtime.settings),
            links=links_for(runtime.settings),
        )
    finally:
        runtime.close()
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    applied = sorted(summary.amount_applied.items())
    amounts = ", ".join(f"{decimal_str(v, k)} {k}" for k, v in applied) or "nothing"
    slack_on = bool(runtime.settings.slack_bot_token and runtime.settings.finance_channel)
    not_posted = summary.to_review - summary.reviews_posted if slack_on else 0
    to_review = f"{summary.to_review} to review in Slack"
    if not_posted:
        to_review = f"{summary.to_review} to review ({summary.reviews_posted} posted in Slack)"
    out().print(
        f"{path.name}: {summary.applied} payment(s) applied ({amounts}), "
        f"{to_review}, {summary.already_imported} already imported. "
        f"{len(summary.outcome.closed)} invoice(s) paid, "
        f"{len(summary.outcome.cancelled)} waiting reminder(s) cancelled.",
        markup=False,
    )
    if summary.amount_unapplied:
        left = sorted(summary.amount_unapplied.items())
        out().print(
            ", ".join(f"{decimal_str(v, k)} {k}" for k, v in left)
            + " paid beyond the invoices named is kept unapplied: a person decides on a refund "
            "in the customer's escalation (`arbot status CUSTOMER` shows it).",
            markup=False,
        )
    for text in notes.values():  # as Slack is sent them: ledger text as written
        out().print(text)
    if not_posted:
        out().print(
            f"{not_posted} payment(s) to review not posted to Slack "
            f"({summary.slack_refused or 'Slack did not answer'}): they are kept, and the next "
            "sweep posts them (`arbot serve` sweeps every five minutes, `arbot poll-inbox` once "
            "each run).",
            markup=False,
        )
    if summary.escalations_not_posted:
        why = f" ({summary.escalations_refused})" if summary.escalations_refused else " yet"
        out().print(
            f"{summary.escalations_not_posted} escalation(s) not posted to Slack{why}: they are "
            "kept, and the next sweep posts them (`arbot serve` sweeps every five minutes, "
            "`arbot poll-inbox` once each run).",
            markup=False,
        )
    if summary.not_told:
        out().print(
            f"Slack was not fully updated after the import ({summary.not_told}): the payments "
            "are stored, and the next sweep posts the escalations, notes and reviews still owed "
            "(`arbot serve` sweeps every five minutes, `arbot poll-inbox` once each run).",
            markup=False,
        )
    if summary.to_review and not slack_on:
        out().print(
            "The payments to review wait in the database: set SLACK_BOT_TOKEN and "
            "ARBOT_FINANCE_CHANNEL to place them from Slack.",
            markup=False,
        )


def poll_inbox_command() -> None:
    """Read new replies from the IMAP mailbox (IMAP_HOST, IMAP_USER, IMAP_PASSWORD, or the
    mailbox's OAuth sign-in)."""
    import ssl

    from bot.core.settings import load_settings
    from bot.escalations.sweeps import sweep
    from bot.replies.flows import receive_raw_email
    from bot.replies.triage import RuleClassifier
    from bot.workspaces.registry import open_runtime
    from integrations.email_in import parse
    from integrations.imap_in import poll
    from integrations.wiring import classifier_for, links_for, mailbox_access_for, slack_for

    runtime = open_runtime(load_settings())
    settings = runtime.settings
    try:
        oauth = mailbox_access_for(settings, runtime)
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        if oauth is None and not (settings.imap_host and settings.imap_user and password):
            raise UserError(
                "set IMAP_HOST, IMAP_USER and IMAP_PASSWORD to read replies by IMAP (or "
                "ARBOT_MAILBOX=gmail|microsoft365 and run `arbot connect gmail|microsoft365`)"
            )
        if not settings.imap_host:
            raise UserError("set IMAP_HOST (or ARBOT_MAILBOX) to read replies by IMAP")
        context = ssl.create_default_context(cafile=settings.imap_ca_file)
        classifier = classifier_for(settings, RuleClassifier())
        slack = slack_for(settings)
        outcomes: dict[str, int] = {}

        def handle(raw: bytes) -> bool:  # True once kept: a message no one can read goes to Slack
            result = receive_raw_email(runtime, raw, parse, classifier=classifier, slack=slack)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            return True

        report = poll(
            settings.imap_host,
            settings.imap_port,
            settings.imap_user or "",
            password,
            settings.imap_folder,
            handle,
            ssl_context=context,
            oauth=oauth,
        )
        # What a cron job running poll-inbox without `arbot serve` would otherwise miss: missed
        # promises, stale links, reviews and escalations Slack did not get, unclaimed threads.
        sweep(runtime, slack, links=links_for(settings))
    finally:
        runtime.close()
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(outcomes.items())) or "nothing new"
    out().print(f"{settings.imap_folder}: {report.fetched} fetched: {summary}.", markup=False)
