"""`arbot plan` and `arbot send`: the day's two stories from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.core.errors import UserError
from handlers.cli.app import Json, app, as_of_date, opened_runtime, out, print_json


@app.command()
def send(
    outbox: Annotated[
        Path | None,
        typer.Option("--outbox", help="Write .eml files into this folder instead of using SMTP."),
    ] = None,
) -> None:
    """Send the approved reminders that are due now, then exit."""
    from bot.reminders.flows import send_due
    from integrations.wiring import copy_fetchers_for, mailbox_refusal, senders_for, slack_for

    with opened_runtime() as runtime:
        senders = senders_for(runtime.settings, outbox, runtime)
        copies = copy_fetchers_for(runtime.settings)
        report = send_due(runtime, senders, slack_for(runtime.settings), copies)
        held = None if "email" in senders else mailbox_refusal(runtime.settings, runtime)
    out().print(
        f"Sent {len(report.sent)}, cancelled {len(report.cancelled)}, retrying "
        f"{len(report.retrying)}, failed {len(report.failed)}, not yet in the send window "
        f"{len(report.rescheduled)}, unknown {len(report.unknown)}."
    )
    for reminder_id, reason in report.cancelled.items():
        why = report.not_sent.get(reminder_id)
        out().print(f"  reminder {reminder_id} cancelled: {reason}" + (f" ({why})" if why else ""))
    if report.unknown:
        out().print(f"  check by hand whether these went out: {report.unknown}")
    if report.outage:
        raise UserError(
            f"sending stopped: {report.outage}. Nothing was lost: the reminders wait as "
            "approved; fix the setting and run `arbot send` again"
        )
    if held:
        raise UserError(
            f"email is not sent: {held}. Nothing was lost: the reminders wait as approved"
        )
    if report.waiting_for_sender:
        out().print(
            f"  {len(report.waiting_for_sender)} text messages wait: SMS sending is not set up"
        )


@app.command()
def plan(
    day: Annotated[
        str | None,
        typer.Option("--date", metavar="YYYY-MM-DD", help="Plan this day (default: today)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan without storing anything.")
    ] = False,
    as_json: Json = False,
    forecast_days: Annotated[
        int | None,
        typer.Option(
            "--forecast",
            metavar="DAYS",
            min=1,
            max=366,
            help="Show the touches and escalations of the next DAYS days instead.",
        ),
    ] = None,
) -> None:
    """Work out today's reminders and escalations, and why the others are held back."""
    from bot.planning.flows import plan_day
    from bot.planning.forecast import forecast
    from bot.planning.planner import PlanRules
    from handlers.cli.plan_report import forecast_table, plan_json, plan_tables
    from integrations.wiring import drafter_for, links_for, slack_for

    with opened_runtime() as runtime:
        when = as_of_date(runtime, day, "--date")
        rules = PlanRules.from_settings(runtime.settings)
        if forecast_days is not None:
            with runtime.writing() as session:
                days = forecast(session, rules, when, forecast_days)
            if as_json:
                print_json(
                    [
                        {
                            "date": d.day.isoformat(),
                            "emails": d.emails,
                            "sms": d.sms,
                            "escalations": d.escalations,
                            "held": d.held,
                        }
                        for d in days
                    ]
                )
            else:
                out().print(forecast_table(days))
            return
        settings = runtime.settings
        drafter = None if dry_run else drafter_for(settings)
        try:
            done = plan_day(
                runtime,
                when,
                links=links_for(settings),
                slack=slack_for(settings),
                drafter=drafter,
                dry_run=dry_run,
            )
        finally:
            if drafter is not None:
                drafter.close()
        run, posted = done.run, done.posted_to
    if as_json:
        print_json(plan_json(run) | ({"posted_to": posted} if posted else {}))
    else:
        out().print(plan_tables(run, dry_run))
        if posted:
            out().print(f"Posted to Slack channel {posted} for approval.")
