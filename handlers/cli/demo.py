"""`arbot demo`: the whole loop on the bundled sample ledger, in a folder of its own."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from bot.core.errors import UserError
from handlers.cli.app import app, opened_runtime, out

if TYPE_CHECKING:
    from bot.core.clock import FixedClock
    from bot.core.runtime import Runtime


DEMO_MARKER = ".arbot-demo"  # only a folder holding this is ever deleted by `arbot demo`


DEMO_BUSINESS = "Brightwater Supply Co."


DEMO_FROM = "ar@brightwater.example"


DEMO_SECRET = "demo-only-secret-not-for-production"


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its ledger (recreated each run).")
    ] = Path("arbot-demo"),
) -> None:
    """See arbot on a sample ledger: no accounts, credentials or network needed."""
    from bot.core.clock import FixedClock
    from bot.core.settings import load_settings
    from bot.ledger.aging import aging_report, overdue_invoices
    from bot.ledger.sample import sample_rows, write_csv
    from bot.planning.planner import PlanRules
    from bot.planning.store import run_plan
    from handlers.cli.ledger import import_file
    from handlers.cli.plan_report import plan_tables
    from handlers.cli.tables import aging_table, import_summary_lines, overdue_table

    marker = folder / DEMO_MARKER
    if folder.exists():
        if any(folder.iterdir()) and not marker.exists():
            raise UserError(f"{folder} exists and is not an arbot demo folder; pick another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    marker.write_text("Made by `arbot demo`, which deletes and rebuilds this folder.\n")
    demo_clock = FixedClock(load_settings().clock().now())  # moved forward to "send" later today
    with opened_runtime(
        clock=demo_clock,
        database_url=f"sqlite:///{folder / 'arbot.db'}",
        business_name=DEMO_BUSINESS,
        from_email=DEMO_FROM,
        secret_key=DEMO_SECRET,
        workspace=None,
    ) as runtime:
        today = runtime.today()
        ledger = write_csv(folder / "sample-ledger.csv", sample_rows(today))
        out().rule(Text("arbot demo", style="bold"))
        out().print(f"Sample ledger for {today.isoformat()}: {ledger}")
        summary = import_file(runtime, ledger)
        for line in import_summary_lines(summary):
            out().print(line, markup=False)
        with runtime.sessions() as session:
            report = aging_report(session, today)
            overdue = overdue_invoices(session, today)
        out().print()
        out().print(aging_table(report))
        out().print()
        out().print(overdue_table(overdue, limit=10))
        out().print()
        with runtime.writing() as session:
            run = run_plan(
                session,
                PlanRules.from_settings(runtime.settings),
                today,
                runtime.clock.now(),
                dry_run=False,
            )
        out().print(plan_tables(run, dry_run=False))
        out().print()
        _demo_send(runtime, demo_clock, folder / "outbox", today)
    out().print()
    customer_id = overdue[0].customer_id if overdue else "C-00001"
    out().print(
        Text.assemble(
            "Try: ",
            (f"DATABASE_URL=sqlite:///{folder}/arbot.db arbot status {customer_id}", "bold"),
        )
    )


def _demo_send(runtime: Runtime, clock: FixedClock, outbox: Path, today: date) -> None:
    """Approve today's plan as a finance person would, then run the send worker at each moment a
    reminder may go out, into a folder of real .eml (and SMS .txt) files instead of SMTP."""
    from bot.core.vocabulary import TIERS
    from bot.reminders import approvals
    from bot.reminders.sending import flush
    from bot.reminders.stale import StaleRules
    from bot.simulation import demo_subjects
    from integrations.email_out import FileSender

    rules = StaleRules.from_settings(runtime.settings)
    with runtime.writing() as session:
        approved = [
            approvals.approve_all(
                session, today, tier, "demo-approver", clock.now(), rules=rules
            ).approved
            for tier in TIERS
        ]
        moments = demo_subjects.send_moments(session)
    count = sum(len(ids) for ids in approved)
    out().print(f"Approved {count} reminders (as a finance person would in Slack).")
    from handlers.cli.demo_story import play_payment

    play_payment(runtime, out())
    files = FileSender(outbox)
    sent = 0
    for moment in moments:
        clock.set(max(moment, clock.now()))
        report = flush(runtime, {"email": files, "sms": files})
        sent += len(report.sent)
    out().print(f"Sent {sent} into {outbox}/: open a .eml file to see what the customer receives.")
    from handlers.cli.demo_story import play_dispute

    play_dispute(runtime, out(), DEMO_SECRET)
