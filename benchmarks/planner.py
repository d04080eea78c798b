"""The stored morning plan (and its dry run) against its floor: one plain-driver SELECT of the
joined rows the planner reads, timed in turns with it in the same run.

A stored plan is committed, then removed (untimed) before the next run, so that every run plans
the same day from the same book: the benchmark's scratch database lifts the audit log's
append-only guard for that removal alone."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from benchmarks import schema_rows
from benchmarks.books import TODAY, book_csv, import_book, size_text
from benchmarks.databases import database, open_runtime
from benchmarks.floors import select_plan_rows
from benchmarks.options import Options
from benchmarks.results import Result, interleaved
from bot.core.runtime import Runtime
from bot.planning.planner import PlanRules
from bot.planning.store import PlanRun, run_plan

RATIO = 3.0
SECONDS = 10.0
# What a stored plan adds, in the order it can be removed.
PLAN_TABLES = (
    "DELETE FROM events WHERE reminder_id IS NOT NULL",
    "DELETE FROM escalations",
    "DELETE FROM reminder_invoices",
    "DELETE FROM reminders",
)
PLAN_WRITES = ("events", "escalations", "reminder_invoices", "reminder_attachments", "reminders")


def plan(runtime: Runtime, dry_run: bool) -> PlanRun:
    rules = PlanRules.from_settings(runtime.settings)
    with runtime.writing() as session:
        run = run_plan(session, rules, TODAY, runtime.clock.now(), dry_run=dry_run)
        if dry_run:
            session.rollback()
    return run


def forget_plan(runtime: Runtime) -> None:
    """Remove a stored plan (reminders, their invoices and escalations, and their events); on
    PostgreSQL, vacuum the tables it wrote."""
    with runtime.writing() as session:
        if session.get_bind().dialect.name == "sqlite":
            guard = session.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'events_no_delete'")
            ).scalar_one()
            session.execute(text("DROP TRIGGER events_no_delete"))
        else:
            session.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        for statement in PLAN_TABLES:
            session.execute(text(statement))
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text(guard))
        else:
            session.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    if runtime.engine.dialect.name == "postgresql":
        # The removed rows are vacuumed away, so that the next run writes into the tables as the
        # first did, not past the dead index entries of every run before it (its unique keys).
        with runtime.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f"VACUUM {', '.join(PLAN_WRITES)}")
            )


def measure(kind: str, options: Options, invoices: int) -> list[Result]:
    """The dry run and the stored plan of a book of `invoices` invoices, on `kind`."""
    with database(kind, options.folder, f"plan-{invoices}") as url:
        runtime = open_runtime(url)
        try:
            import_book(runtime, book_csv(options.folder, invoices))
            plan(runtime, dry_run=True)  # the first plan stores the playbook's version 1
            runs: list[PlanRun] = []
            floor_rows: list[int] = []

            def dry() -> None:
                runs.append(plan(runtime, dry_run=True))

            def stored() -> None:
                runs.append(plan(runtime, dry_run=False))

            def floor() -> None:
                floor_rows.append(select_plan_rows(url))

            dry_seconds, dry_floor = interleaved(options.runs, dry, floor)
            stored_seconds, stored_floor = interleaved(
                options.runs, stored, floor, before=lambda: forget_plan(runtime)
            )
            written = rows_of_a_stored_plan(runtime, url)
            line = Result(
                "plan, stored",
                kind,
                size_text(invoices),
                stored_seconds,
                floor=stored_floor,
                floor_name="SELECT",
                ratio_target=RATIO,
                target=SECONDS,
            )
            alone = schema_rows.figures(line, url, written, options.runs)
        finally:
            runtime.close()
    last = runs[-1]
    rendered = sum(1 for item in last.plan.items if item.message is not None)
    note = (
        f"{len(last.plan.items):,} reminders and escalations ({rendered:,} messages rendered), "
        f"{len(last.plan.held):,} held; {len(last.reminder_ids):,} stored. The floor fetches "
        f"{floor_rows[-1]:,} joined rows."
    )
    size = size_text(invoices)
    return [
        Result(
            "plan, dry run",
            kind,
            size,
            dry_seconds,
            floor=dry_floor,
            floor_name="SELECT",
            ratio_target=RATIO,
            target=SECONDS,
        ),
        dataclasses.replace(line, note=note),
        *alone,
    ]


def rows_of_a_stored_plan(runtime: Runtime, url: str) -> schema_rows.Written:
    """The rows one more stored plan (untimed) writes, read back; then removed like the others."""
    forget_plan(runtime)
    before = schema_rows.snapshot_of(url)
    plan(runtime, dry_run=False)
    written = schema_rows.written_into(url, before)
    forget_plan(runtime)
    return written


def run(options: Options) -> list[Result]:
    return [r for kind in options.databases for r in measure(kind, options, options.invoices)]
