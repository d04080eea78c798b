"""The `arbot` command line. Exit codes: 0 done, 1 something to fix (the reason is on stderr), 2 bad usage."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from bot.core import migrate
from bot.core.clock import Clock, FixedClock
from bot.core.db import make_engine
from bot.core.errors import UserError
from bot.core.models import PlaybookVersion, Reminder
from bot.core.runtime import Runtime
from bot.core.settings import load_settings
from bot.daily_steps import (
    build_senders,
    payment_links_for,
    post_plan_to_slack,
    tell_slack_after_send,
)
from bot.learning.check import check_bundle
from bot.learning.versions import activate, ensure_active, propose, rollback
from bot.ledger.aging import aging_report, overdue_invoices
from bot.ledger.sample import sample_rows, write_csv
from bot.ledger.status import account_status
from bot.ledger.upsert import ImportSummary, apply_batch
from bot.planning.forecast import forecast
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.sending import flush
from bot.workspaces.registry import open_runtime
from handlers.cli.plan_report import forecast_table, plan_json, plan_tables
from handlers.cli.tables import aging_table, import_summary_lines, overdue_table, status_tables
from integrations.csv_ledger import count_rows, read_ledger_csv
from integrations.email_out import FileSender
from playbooks.loader import PlaybookError, load_bundle

PROGRESS_FROM_ROWS = 5000
DEMO_MARKER = ".arbot-demo"  # only a folder holding this is ever deleted by `arbot demo`
DEMO_BUSINESS = "Brightwater Supply Co."
DEMO_FROM = "ar@brightwater.example"
DEMO_SECRET = "demo-only-secret-not-for-production"

app = typer.Typer(
    name="arbot",
    help=(
        "arbot follows up on unpaid invoices for you. It reads your ledger, works out who should "
        "get a friendly reminder, and shows you what is overdue.\n\n"
        "Start with `arbot demo` to see it on sample data; no set-up needed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Look after the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
playbook_app = typer.Typer(help="Check and manage the reminder playbook.", no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True)


T = TypeVar("T")

AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Count days late as of this date (default: today in ARBOT_TIMEZONE).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv)
    except UserError as exc:
        err().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)


@contextmanager
def _runtime(clock: Clock | None = None, **overrides: Any) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(**overrides), clock=clock)
    try:
        yield runtime
    finally:
        runtime.close()


def _as_of(runtime: Runtime, text: str | None) -> date:
    if text is None:
        return runtime.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is not a date; write it as YYYY-MM-DD") from None


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


@app.command("import-csv")
def import_csv(
    path: Annotated[Path, typer.Argument(help="The ledger CSV: one row per invoice (see README).")],
) -> None:
    """Import invoices from a ledger CSV. A file with any bad row imports nothing."""
    with _runtime() as runtime:
        summary = _import_file(runtime, path)
    for line in import_summary_lines(summary):
        out().print(line, markup=False)


def _import_file(runtime: Runtime, path: Path) -> ImportSummary:
    region = runtime.settings.phone_region
    batch = _with_progress(path, lambda tick: read_ledger_csv(path, region, on_row=tick))
    with runtime.writing() as session:
        return apply_batch(session, batch, runtime.clock.now())


def _with_progress(path: Path, work: Callable[[Callable[[], None]], T]) -> T:
    rows = count_rows(path) if path.is_file() else 0
    if rows < PROGRESS_FROM_ROWS or not err().is_terminal:
        return work(lambda: None)
    columns = (
        TextColumn("Checking rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task("check", total=rows)
        return work(lambda: progress.advance(task))


@app.command()
def aging(as_of: AsOf = None, as_json: Json = False) -> None:
    """Open balances by how late they are (current, 1-30, 31-60, 61-90, 90+ days), per currency."""
    with _runtime() as runtime:
        day = _as_of(runtime, as_of)
        with runtime.sessions() as session:
            report = aging_report(session, day)
    if as_json:
        _print_json(report.as_json())
    else:
        out().print(aging_table(report))


@app.command()
def status(
    customer: Annotated[str, typer.Argument(help="Customer id or name, e.g. C-00012 or 'acme'.")],
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """Everything about one customer: open invoices, aging, contacts and history."""
    with _runtime() as runtime:
        day = _as_of(runtime, as_of)
        with runtime.sessions() as session:
            doc = account_status(session, customer, day)
    if as_json:
        _print_json(doc)
        return
    for renderable in status_tables(doc):
        out().print(renderable)


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its ledger (recreated each run).")
    ] = Path("arbot-demo"),
) -> None:
    """See arbot on a sample ledger: no accounts, credentials or network needed."""
    marker = folder / DEMO_MARKER
    if folder.exists():
        if any(folder.iterdir()) and not marker.exists():
            raise UserError(f"{folder} exists and is not an arbot demo folder; pick another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    marker.write_text("Made by `arbot demo`, which deletes and rebuilds this folder.\n")
    demo_clock = FixedClock(load_settings().clock().now())  # moved forward to "send" later today
    with _runtime(
        clock=demo_clock,
        database_url=f"sqlite:///{folder / 'arbot.db'}",
        business_name=DEMO_BUSINESS,
        from_email=DEMO_FROM,
        secret_key=DEMO_SECRET,
        workspace=None,
    ) as runtime:
        today = runtime.today()
        ledger = write_csv(folder / "sample-ledger.csv", sample_rows(today))
        out().rule("[bold]arbot demo[/bold]")
        out().print(f"Sample ledger for {today.isoformat()}: {ledger}")
        summary = _import_file(runtime, ledger)
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
    out().print(
        f"Try: [bold]DATABASE_URL=sqlite:///{folder}/arbot.db arbot status "
        f"{overdue[0].customer_id if overdue else 'C-00001'}[/bold]",
        highlight=False,
    )


def _demo_send(runtime: Runtime, clock: FixedClock, outbox: Path, today: date) -> None:
    """Approve today's plan as a finance person would, then run the send worker at each moment a
    reminder may go out, into a folder of real .eml (and SMS .txt) files instead of SMTP."""
    with runtime.writing() as session:
        approved = [
            approvals.approve_all(session, today, tier, "demo-approver", clock.now())
            for tier in ("strategic", "standard", "transactional")
        ]
        due = session.scalars(select(Reminder.send_after).where(Reminder.state == "approved"))
        moments = sorted({t for t in due if t is not None})
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


@app.command()
def send(
    outbox: Annotated[
        Path | None,
        typer.Option("--outbox", help="Write .eml files into this folder instead of using SMTP."),
    ] = None,
) -> None:
    """Send the approved reminders that are due now, then exit."""
    with _runtime() as runtime:
        senders = build_senders(runtime.settings, outbox)
        report = flush(runtime, senders)
        tell_slack_after_send(runtime, report)
    out().print(
        f"Sent {len(report.sent)}, cancelled {len(report.cancelled)}, retrying "
        f"{len(report.retrying)}, failed {len(report.failed)}, not yet in the send window "
        f"{len(report.rescheduled)}, unknown {len(report.unknown)}."
    )
    for reminder_id, reason in report.cancelled.items():
        out().print(f"  reminder {reminder_id} cancelled: {reason}")
    if report.unknown:
        out().print(f"  check by hand whether these went out: {report.unknown}")
    if report.outage:
        raise UserError(
            f"sending stopped: {report.outage}. Nothing was lost: the reminders wait as "
            "approved; fix the setting and run `arbot send` again"
        )
    if report.waiting_for_sender:
        out().print(
            f"  {len(report.waiting_for_sender)} text messages wait: SMS sending is not set up"
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date, the main one and every installed workspace's
    (arbot also does this itself when it starts)."""
    settings = load_settings(workspace=None)
    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        applied = migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if applied:
        out().print(f"Database upgraded from {before or 'empty'} to {after}.")
    else:
        out().print(f"Database already up to date ({after}).")
    from handlers.cli.workspaces import upgrade_workspaces

    for team_id in upgrade_workspaces(load_settings(workspace=None)):
        out().print(f"Workspace {team_id}: up to date ({after}).")


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
    with _runtime() as runtime:
        when = _as_of(runtime, day)
        rules = PlanRules.from_settings(runtime.settings)
        if forecast_days is not None:
            with runtime.writing() as session:
                days = forecast(session, rules, when, forecast_days)
            if as_json:
                _print_json(
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
        with runtime.writing() as session:
            run = run_plan(
                session,
                rules,
                when,
                runtime.clock.now(),
                dry_run=dry_run,
                links=payment_links_for(runtime.settings),
            )
            if dry_run:
                session.rollback()  # a dry run stores nothing, not even a first playbook version
        posted = None if dry_run else post_plan_to_slack(runtime, when, run)
    if as_json:
        _print_json(plan_json(run) | ({"posted_to": posted} if posted else {}))
    else:
        out().print(plan_tables(run, dry_run))
        if posted:
            out().print(f"Posted to Slack channel {posted} for approval.")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Serve HTTP only: no send worker, plan, sync or sweeps here."
        ),
    ] = False,
) -> None:
    """Run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set), the webhooks,
    /healthz and the scheduled jobs (morning plan, sync, send worker, sweeps, weekly review).
    SIGTERM stops it gracefully: the send worker finishes its tick first."""

    with _runtime(workspace=None) as runtime:
        settings = runtime.settings
        several = bool(settings.slack_client_id and settings.slack_client_secret)
        if not settings.slack_signing_secret or not (settings.slack_bot_token or several):
            raise UserError(
                "to serve the Slack app set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (one "
                "workspace), or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (installed through "
                "/slack/install into several), or all of them"
            )
        from bot.core.logs import secrets_of, setup_logging

        setup_logging(json=settings.log_json, secrets=secrets_of(settings))
        from bot.workspaces.registry import Workspaces
        from handlers.app import create_app
        from handlers.cli.stopping import SigtermStop
        from handlers.slack import build_bolt
        from integrations.slack_chat import SlackChat, web_client
        from scheduler.runner import Runner, start_runner

        workspaces = Workspaces(runtime)
        installed = workspaces.installed()
        if installed:
            names = ", ".join(f"{w.team_name} ({w.team_id})" for w in installed)
            err().print(f"Installed workspaces: {names}.", markup=False)
        elif several:
            where = (
                f"{settings.public_url}/slack/install" if settings.public_url else "/slack/install"
            )
            err().print(f"No workspace installed yet: install arbot at {where}.", markup=False)
        client = bolt = None
        if settings.slack_bot_token:
            client = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
            bolt = build_bolt(runtime, client)
        # A SIGTERM wherever it lands stops the HTTP server (handlers.cli.stopping); then the scheduler
        # below is stopped in order.
        sigterm = SigtermStop()
        sigterm.install()
        runner: Runner | None = None
        if settings.scheduler_enabled and not no_scheduler:
            slack = SlackChat(client) if client is not None else None
            runner = start_runner(runtime, slack, workspaces=workspaces)
        else:
            err().print("Scheduler off (--no-scheduler or ARBOT_SCHEDULER=false): HTTP only.")
        socket_mode = None
        try:
            if settings.slack_app_token and bolt is not None:
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                err().print("Slack Socket Mode: connecting (no public URL needed).")
                socket_mode = SocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
                socket_mode.connect()  # type: ignore[no-untyped-call]
            import uvicorn

            config = uvicorn.Config(
                create_app(runtime, bolt, runner=runner, workspaces=workspaces),
                host=host,
                port=port,
                log_config=None,  # arbot's logging (bot.core.logs) formats every line
                access_log=False,  # raw paths can carry tokens (/unsubscribe/{token})
            )
            sigterm.run(uvicorn.Server(config))
        finally:
            if socket_mode is not None:
                socket_mode.close()  # type: ignore[no-untyped-call]
            if runner is not None:
                runner.stop()
            workspaces.close()


@playbook_app.command("check")
def playbook_check(
    path: Annotated[
        Path | None, typer.Argument(help="A playbook YAML file (default: the bundled one).")
    ] = None,
) -> None:
    """Render every template of every step against sample data and lint it."""
    try:
        bundle = load_bundle(path)
    except PlaybookError as exc:
        raise UserError(str(exc)) from None
    results = check_bundle(bundle)
    table = Table(title=f"Playbook {bundle.playbook.name} ({bundle.label})", title_justify="left")
    for column in ("Ladder", "Step", "Template", "Result"):
        table.add_column(column)
    for check in results:
        verdict = "ok" if check.ok else f"{len(check.problems)} problems"
        table.add_row(check.ladder, check.step, check.template or "(a person)", verdict)
    out().print(table)
    problems = [f"{c.ladder} step {c.step}: {p}" for c in results for p in c.problems]
    if problems:
        raise UserError(f"{bundle.label}: the playbook has problems:\n" + "\n".join(problems))
    out().print(f"All {len(results)} steps render and pass the linter.")


@playbook_app.command("list")
def playbook_list() -> None:
    """The stored playbook versions, newest first."""
    with _runtime() as runtime, runtime.writing() as session:
        ensure_active(session, runtime.clock.now())
        versions = session.scalars(
            select(PlaybookVersion).order_by(PlaybookVersion.version.desc())
        ).all()
        table = Table(title="Playbook versions", title_justify="left")
        for column in ("Version", "Status", "Name", "Proposed by", "Approved by", "Why"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                str(v.version),
                v.status,
                v.name,
                v.proposed_by,
                v.approved_by or "",
                v.rationale or "",
            )
    out().print(table)


@playbook_app.command("propose")
def playbook_propose(
    path: Annotated[Path, typer.Argument(help="The new playbook YAML file.")],
    why: Annotated[str, typer.Option("--why", help="What changed and why.")] = "",
) -> None:
    """Store a new playbook version as proposed (it changes nothing until activated)."""
    with _runtime() as runtime, runtime.writing() as session:
        version = propose(session, path, "cli", why, runtime.clock.now())
        number = version.version
    out().print(
        f"Playbook version {number} proposed. Activate it with `arbot playbook activate {number}`."
    )


@playbook_app.command("activate")
def playbook_activate(version: Annotated[int, typer.Argument(help="The version number.")]) -> None:
    """Make a proposed (or earlier) version the active playbook."""
    with _runtime() as runtime, runtime.writing() as session:
        activate(session, version, "cli", runtime.clock.now())
    out().print(f"Playbook version {version} is now active.")


@playbook_app.command("rollback")
def playbook_rollback() -> None:
    """Go back to the version that was active before the current one."""
    with _runtime() as runtime, runtime.writing() as session:
        previous = rollback(session, "cli", runtime.clock.now())
        number = previous.version
    out().print(f"Rolled back: playbook version {number} is active again.")


@playbook_app.command("suggest")
def playbook_suggest(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, store nothing.")] = False,
) -> None:
    """Propose changes the last weeks' edits and outcomes support; a person approves them."""
    from bot.learning import proposals
    from bot.learning import rules as proposal_rules

    with _runtime() as runtime, runtime.writing() as session:
        if dry_run:
            lines = [p.rationale for p in proposal_rules.evaluate(session, runtime.today())]
        else:
            lines = [
                f"version {v.version} proposed: {v.rationale}"
                for v in proposals.propose_all(session, runtime.today(), runtime.clock.now())
            ]
    for line in lines or ["Nothing to propose."]:
        out().print(line, markup=False)


@playbook_app.command("reject")
def playbook_reject(
    version: Annotated[int, typer.Argument(help="The proposed version's number.")],
) -> None:
    """Turn a proposed version down; it is not proposed again for eight weeks."""
    from bot.learning import proposals

    with _runtime() as runtime, runtime.writing() as session:
        decision = proposals.reject(
            session, proposals.id_of_version(session, version), "cli", runtime.clock.now()
        )
    out().print(decision.message, markup=False)


@app.command("simulate")
def simulate_command(
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 90,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same run).")] = 7,
    model: Annotated[
        Path | None, typer.Option("--model", help="A YAML file of behaviour probabilities.")
    ] = None,
    customers: Annotated[int, typer.Option("--customers", help="Sample customers.")] = 90,
    playbook: Annotated[
        Path | None, typer.Option("--playbook", help="A playbook file (default: the bundled one).")
    ] = None,
) -> None:
    """What following up is worth on the sample ledger, against no follow-up: from a stated
    model of customer behaviour, not from real customers."""
    from bot.core.clock import local_date
    from bot.simulation.model import BehaviourModel, load_model
    from bot.simulation.report import describe
    from bot.simulation.run import simulate

    with _runtime() as runtime:  # ARBOT_WORKSPACE's business rules, when it names one
        settings = runtime.settings
    result = simulate(
        days,
        seed,
        load_model(model) if model else BehaviourModel(),
        start_day=local_date(settings.clock(), settings.timezone),
        customers=customers,
        playbook=playbook,
        settings=settings,
    )
    out().print(describe(result), markup=False)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the charts and index.html.")],
    weeks: Annotated[int, typer.Option("--weeks", help="How many weeks back (1-104).")] = 12,
) -> None:
    """Outcomes per step and tier, DSO, aging and cash collected by week: charts and an HTML page."""
    from bot.learning.report import write_report

    with _runtime() as runtime, runtime.sessions() as session:
        paths = write_report(
            session, runtime.today(), out_dir, timezone=runtime.settings.timezone, weeks=weeks
        )
    for path in paths:
        out().print(str(path), markup=False)


def _register_more() -> None:
    from handlers.cli.money_in import import_payments_command, poll_inbox_command

    app.command("import-payments")(import_payments_command)
    app.command("poll-inbox")(poll_inbox_command)
    from handlers.cli.sources import connect_command, sync_command

    app.command("connect")(connect_command)
    app.command("sync")(sync_command)
    from handlers.cli.workspaces import workspace_app

    app.add_typer(workspace_app, name="workspace")


_register_more()

if __name__ == "__main__":
    main()
