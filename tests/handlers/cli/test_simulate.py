"""`arbot simulate`: twenty seeds by default with their spread, the business's proposed playbook
versions as arms of their own, and `--fit` learning the behaviour model from the ledger's own
history (or keeping the defaults, and saying so, when there is too little)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Invoice
from bot.core.runtime import Runtime
from bot.learning.versions import propose
from bot.ledger.upsert import apply_batch
from bot.payments.record import cancel_for_invoices, record_payment
from integrations.base.ledger import CustomerRecord, InvoiceRecord, LedgerBatch
from tests.bot.simulation.test_bench import PEOPLE_ONLY
from tests.bot.simulation.test_fit import PLANTED, synthetic

NOW = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
TINY = ("--days", "1", "--customers", "2", "--workers", "1")


@pytest.mark.slow  # twenty seeds of a simulation
def test_simulate_runs_twenty_seeds_by_default_and_prints_their_spread(
    cli: Any, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the simulation runs in memory: one database is enough")
    result = cli("simulate", *TINY)
    assert result.code == 0, result.stderr
    assert "on 20 seeds (7 to 26)" in result.stdout
    assert "not from real customers" in result.stdout
    assert "10th to 90th" in result.stdout and "vs no follow-up" in result.stdout
    assert "none = no follow-up; active = the bundled playbook" in result.stdout


def test_a_proposed_version_is_simulated_beside_the_active_one(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "people-only.yml"
    path.write_text(PEOPLE_ONLY)
    with runtime.writing() as session:
        version = propose(session, path, "ana", "hand everything to a person", NOW)
    result = cli("simulate", *TINY, "--seeds", "2", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    arms = {arm["key"]: arm["label"] for arm in doc["arms"]}
    assert arms == {
        "none": "no follow-up",
        "active": "the active playbook (version 1)",
        f"v{version.version}": f"proposed version {version.version}: hand everything to a person",
    }
    assert doc["seeds"] == [7, 8] and doc["fit"] is None


def _write_history(runtime: Runtime) -> None:
    """The planted habit's invoices in the ledger, each paid one recorded as a payment."""
    history = synthetic(PLANTED, 240, seed=5)
    batch = LedgerBatch("csv", "history")
    for index, item in enumerate(history):
        batch.customers[f"C-{index % 30}"] = CustomerRecord(
            f"C-{index % 30}", f"Customer {index % 30}", tier=item.tier
        )
        batch.invoices.append(
            InvoiceRecord(
                f"C-{index % 30}",
                f"H-{index}",
                item.issue_date,
                item.due_date,
                "USD",
                Decimal("100.00"),
                Decimal("100.00"),
            )
        )
    with runtime.writing() as session:
        apply_batch(session, batch, NOW - timedelta(days=400))
        ids = dict(session.execute(select(Invoice.number, Invoice.id)).all())
        # Recorded as a bank file is: each payment new, its rows written together at the end, and
        # the reminders still waiting for those invoices cancelled once for all of them.
        paid: list[int] = []
        with session.no_autoflush:
            for index, item in enumerate(history):
                if item.paid_on is None:
                    continue
                invoice = session.get(Invoice, ids[f"H-{index}"])
                assert invoice is not None
                record_payment(
                    session,
                    source="bank",
                    external_id=f"P-{index}",
                    customer_id=invoice.customer_id,
                    received_on=item.paid_on,
                    amount=Decimal("100.00"),
                    currency="USD",
                    invoice_ids=[invoice.id],
                    now=NOW,
                    known_new=True,
                    cancel=False,
                )
                paid.append(invoice.id)
        cancel_for_invoices(session, paid, NOW)


@pytest.mark.slow  # 240 generated invoices over 400 days fitted, then simulated twice
def test_fit_learns_the_ledgers_habit_prints_it_beside_the_defaults_and_simulates_with_it(
    cli: Any, runtime: Runtime
) -> None:
    _write_history(runtime)
    result = cli("simulate", *TINY, "--seeds", "1", "--fit", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    fit = doc["fit"]
    assert fit["fitted"] is True and fit["paid_invoices"] > 150
    days = fit["mean_days_after_due"]
    assert days["fitted"] == pytest.approx(days["history"], abs=2.5)
    assert abs(days["defaults"] - days["history"]) > 10
    fitted_rate = float(fit["parameters"]["pay_daily.standard"]["fitted"])
    assert doc["model"]["pay_daily"]["standard"] == pytest.approx(fitted_rate)
    assert fitted_rate == pytest.approx(0.06, rel=0.4)
    text = cli("simulate", *TINY, "--seeds", "1", "--fit").stdout
    assert "Behaviour model fitted from the ledger's history up to 2026-03-16" in text
    assert "The simulation below runs on the fitted model." in text


def test_fit_with_too_little_history_keeps_the_defaults_and_says_so(cli: Any) -> None:
    result = cli("simulate", *TINY, "--seeds", "1", "--fit")
    assert result.code == 0, result.stderr
    assert "only 0 paid invoices in the ledger's history" in result.stdout
    assert "The simulation below runs on the defaults." in result.stdout


def test_a_silly_number_of_seeds_is_refused_with_the_reason(cli: Any) -> None:
    result = cli("simulate", *TINY, "--seeds", "0")
    assert result.code == 1
    assert "--seeds: between 1 and 500 seeds, not 0" in result.stderr
