"""The bundled sample ledger says when each paid invoice was paid, each customer by a habit of
its own, so the demo's forecast learns from history and places cash in the weeks ahead."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

from bot.ledger.sample import sample_rows, write_csv

TODAY = date(2026, 3, 16)  # the cli fixture's day


def test_each_paid_row_of_the_sample_says_a_day_between_its_issue_and_today() -> None:
    rows = sample_rows(TODAY)
    assert rows == sample_rows(TODAY)  # the same seed, the same days
    lateness: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r["balance"] != "0.00":
            assert not r.get("paid_date")
            continue
        paid = date.fromisoformat(r["paid_date"])
        assert date.fromisoformat(r["issue_date"]) <= paid <= TODAY
        lateness[r["customer_id"]].append((paid - date.fromisoformat(r["due_date"])).days)
    late = [days for each in lateness.values() for days in each]
    assert len(late) >= 40
    assert any(days < 0 for days in late)  # some pay early
    assert sorted(late)[len(late) // 2] > 0  # most pay late
    usual = {customer: sum(days) / len(days) for customer, days in lateness.items()}
    assert max(usual.values()) - min(usual.values()) >= 10  # each customer its own habit


def test_the_forecast_of_the_sample_ledger_places_cash_in_the_weeks_ahead(
    cli: Any, tmp_path: Path
) -> None:
    ledger = write_csv(tmp_path / "sample-ledger.csv", sample_rows(TODAY))
    assert cli("import-csv", str(ledger)).code == 0

    result = cli("forecast", "--json")

    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert any(week["expected"] for week in doc["weeks"])
    assert any(invoice["basis"] == "customer" for invoice in doc["invoices"])
