"""Plan 100,000 open invoices across 20,000 customers, against the floor of one plain SELECT."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from benchmarks.ledger import TODAY, Result
from bot.core.clock import FixedClock
from bot.core.models import Invoice
from bot.core.runtime import start
from bot.core.settings import load_settings
from bot.ledger.sample import sample_rows, write_csv
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv

INVOICES = 100_000
CUSTOMERS = 20_000


def run() -> tuple[list[Result], str]:
    with tempfile.TemporaryDirectory() as folder:
        rows = sample_rows(TODAY, customers=CUSTOMERS, invoices=INVOICES, seed=13)
        for row in rows:
            row["balance"] = row["amount"]  # every invoice open
        csv_path = write_csv(Path(folder) / "ledger.csv", rows)
        settings = load_settings(
            env_file=None, database_url=f"sqlite:///{folder}/bench.db", timezone="America/New_York"
        )
        clock = FixedClock(datetime(2026, 3, 16, 14, tzinfo=UTC))
        runtime = start(settings, clock=clock)
        with runtime.writing() as session:
            apply_batch(session, read_ledger_csv(csv_path), clock.now())
        rules = PlanRules.from_settings(settings)
        with runtime.writing() as session:  # the first plan stores playbook version 1
            run_plan(session, rules, TODAY, clock.now(), dry_run=True)

        floor = []
        for _ in range(3):
            started = time.perf_counter()
            with runtime.sessions() as session:
                fetched = session.execute(
                    select(*Invoice.__table__.columns).where(Invoice.status == "open")
                ).all()
            floor.append(time.perf_counter() - started)
        assert len(fetched) == INVOICES

        started = time.perf_counter()
        with runtime.writing() as session:
            dry = run_plan(session, rules, TODAY, clock.now(), dry_run=True)
            session.rollback()
        dry_seconds = time.perf_counter() - started

        started = time.perf_counter()
        with runtime.writing() as session:
            stored = run_plan(session, rules, TODAY, clock.now(), dry_run=False)
        stored_seconds = time.perf_counter() - started
        runtime.close()

    best_floor = min(floor)
    size = f"{INVOICES:,} open invoices, {CUSTOMERS:,} customers"
    note = (
        f"plain SELECT of the open invoices: {best_floor:.2f} s; "
        f"plan (dry run) = {dry_seconds / best_floor:.1f}x that floor, "
        f"plan (stored) = {stored_seconds / best_floor:.1f}x (target ≤ 3x). "
        f"{len(dry.plan.items):,} reminders and escalations, {len(dry.plan.held):,} held; "
        f"{len(stored.reminder_ids):,} stored."
    )
    return [
        Result(
            "plan (dry run: load, decide, render)", size, dry_seconds, min(10.0, 3 * best_floor)
        ),
        Result("plan (stored)", size, stored_seconds, 10),
    ], note
