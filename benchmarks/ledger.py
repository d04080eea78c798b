"""Import 100,000 invoices (20,000 customers) from a ledger CSV, then run the aging query on them."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.core.clock import FixedClock
from bot.core.runtime import start
from bot.core.settings import load_settings
from bot.ledger.aging import aging_report
from bot.ledger.sample import sample_rows, write_csv
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv

INVOICES = 100_000
CUSTOMERS = 20_000
TODAY = date(2026, 3, 16)


def one_invoice_each(
    count: int, days_past_due: int, tiers: tuple[str, ...] = ("standard",)
) -> list[dict[str, str]]:
    """`count` customers with one open $1,200 invoice each, `days_past_due` late, by email."""
    due = (TODAY - timedelta(days=days_past_due)).isoformat()
    return [
        {
            "customer_id": f"C-{n}",
            "customer_name": f"Customer {n}",
            "invoice_number": f"I-{n}",
            "issue_date": "2026-01-01",
            "due_date": due,
            "currency": "USD",
            "amount": "1200.00",
            "balance": "1200.00",
            "contact_name": "Maria Garcia",
            "email": f"ap@c{n}.example",
            "phone": "",
            "tier": tiers[n % len(tiers)],
            "owner_slack_id": "",
            "timezone": "America/New_York",
            "sms_consent": "false",
            "never_automate": "false",
            "tags": "",
        }
        for n in range(count)
    ]


@dataclass(frozen=True)
class Result:
    name: str
    size: str
    seconds: float
    target_seconds: float


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        csv_path = write_csv(
            Path(folder) / "ledger.csv",
            sample_rows(TODAY, customers=CUSTOMERS, invoices=INVOICES, seed=11),
        )
        settings = load_settings(env_file=None, database_url=f"sqlite:///{folder}/bench.db")
        clock = FixedClock(datetime(2026, 3, 16, 14, tzinfo=UTC))
        runtime = start(settings, clock=clock)
        size = f"{INVOICES:,} invoices, {CUSTOMERS:,} customers"

        started = time.perf_counter()
        batch = read_ledger_csv(csv_path)
        with runtime.writing() as session:
            apply_batch(session, batch, clock.now())
        first_import = time.perf_counter() - started

        started = time.perf_counter()
        batch = read_ledger_csv(csv_path)
        with runtime.writing() as session:
            summary = apply_batch(session, batch, clock.now())
        reimport = time.perf_counter() - started
        assert not summary.changed, "re-importing the same file must change nothing"

        timings = []
        for _ in range(3):
            started = time.perf_counter()
            with runtime.sessions() as session:
                report = aging_report(session, TODAY)
            timings.append(time.perf_counter() - started)
        assert report.currencies["USD"].invoice_count > 0
        runtime.close()
    return [
        Result("import-csv (new ledger)", size, first_import, 15),
        Result("import-csv (same file again)", size, reimport, 15),
        Result("aging report (best of 3)", size, min(timings), 1),
    ]
