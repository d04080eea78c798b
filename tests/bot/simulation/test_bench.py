"""The simulation as a test bench: every arm on the same seeds, the spread over seeds, the paired
difference from no follow-up, and a printout that says the figures come from a model."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.errors import UserError
from bot.learning.versions import load_checked
from bot.ledger.sample import sample_rows, write_csv
from bot.simulation.bench import Arm, run_bench, seeds_from
from bot.simulation.model import BehaviourModel
from bot.simulation.report import DISCLAIMER, Bench, Spread, as_json, describe
from integrations.base.ledger import LedgerBatch
from integrations.csv_ledger import read_ledger_csv

START = date(2026, 3, 16)
DAYS = 10
SEEDS = [11, 12, 13]
SMALL = sample_rows(START, customers=10, invoices=26, seed=7)
PEOPLE_ONLY = "name: people_only\ntiers:\n" + "".join(
    f"  {tier}: [{{key: plus1, offset_days: 1, action: escalate}}]\n"
    for tier in ("strategic", "standard", "transactional")
)


def ledger(rows: list[dict[str, str]]) -> LedgerBatch:
    """The rows as the CLI hands them over: written to a ledger CSV and read back."""
    with tempfile.TemporaryDirectory() as folder:
        return read_ledger_csv(write_csv(Path(folder) / "ledger.csv", rows))


def people_only() -> str:
    """A playbook that only ever hands accounts to a person, as a stored version's content."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people-only.yml"
        path.write_text(PEOPLE_ONLY)
        return load_checked(path).to_json()


ARMS = [
    Arm("active", "the bundled playbook"),
    Arm("v2", "proposed version 2: people only", playbook=people_only(), version=2),
]


@pytest.fixture(scope="module")
def bench() -> Bench:
    return run_bench(DAYS, SEEDS, BehaviourModel(), ledger(SMALL), ARMS, start_day=START)


@pytest.mark.slow  # the module's bench: three arms on three seeds
def test_every_arm_runs_on_every_seed_of_the_same_opening_ledger(bench: Bench) -> None:
    assert [key for key, _ in bench.arms] == ["none", "active", "v2"]
    assert bench.customers == 10 and bench.invoices_at_start == 26
    for key, _ in bench.arms:
        runs = bench.runs[key]
        assert len(runs) == len(SEEDS)
        # the same seed bills the same invoices in every arm
        assert [r.billed for r in runs] == [r.billed for r in bench.runs["none"]]


@pytest.mark.slow
def test_following_up_collects_more_and_sooner_than_none_on_every_seed(bench: Bench) -> None:
    for with_, without in zip(bench.runs["active"], bench.runs["none"], strict=True):
        assert with_.messages > 0 and without.messages == 0
        assert with_.collected["USD"] >= without.collected["USD"]
        assert with_.dso["USD"] is not None and without.dso["USD"] is not None
        assert with_.dso["USD"] <= without.dso["USD"]
    cash = bench.figures("active")["cash_collected:USD"].versus_none
    assert cash is not None and cash.median > 0 and cash.seeds == len(SEEDS)
    dso = bench.figures("active")["dso:USD"].versus_none
    assert dso is not None and dso.median < 0


@pytest.mark.slow
def test_a_proposed_version_is_an_arm_of_its_own(bench: Bench) -> None:
    """The proposed version only hands accounts to a person: it sends nothing, so on each seed
    it collects exactly what no follow-up collects (the same draws), and less than the active."""
    for proposed, without in zip(bench.runs["v2"], bench.runs["none"], strict=True):
        assert proposed.messages == 0 and proposed.escalations > 0
        assert proposed.collected == without.collected
    assert "v2 = proposed version 2: people only" in describe(bench)


def test_when_reminders_change_nothing_every_arm_collects_the_same() -> None:
    """Every arm draws the same number for the same invoice on the same day: with no lift from a
    reminder, following up makes no difference at all."""
    inert = replace(
        BehaviourModel(),
        pay_on_touch_day={"strategic": 0.0, "standard": 0.0, "transactional": 0.0},
        dispute_after_touch=0.0,
    )
    result = run_bench(DAYS, [11], inert, ledger(SMALL), ARMS[:1], start_day=START)
    with_, without = result.runs["active"][0], result.runs["none"][0]
    assert with_.messages > 0 and with_.payments > 0
    assert with_.collected == without.collected and with_.payments == without.payments


@pytest.mark.slow
def test_the_printout_shows_the_spread_and_the_paired_difference(bench: Bench) -> None:
    text = describe(bench)
    assert text.splitlines()[1] == DISCLAIMER
    assert f"Simulated {DAYS} days (2026-03-16 to 2026-03-25) on 3 seeds (11 to 13)" in text
    for title in ("Cash collected (USD)", "DSO on the last day (USD)", "Paid by due + 30"):
        assert title in text
    assert "Messages sent" in text and "10th to 90th" in text and "vs no follow-up" in text
    cash = bench.figures("active")["cash_collected:USD"]
    assert cash.spread is not None and cash.versus_none is not None
    row = next(line for line in text.splitlines() if line.startswith("  active") and "," in line)
    assert f"{cash.spread.low:,.2f} to {cash.spread.high:,.2f}" in row
    assert f"{cash.versus_none.median:+,.2f}" in row


@pytest.mark.slow
def test_the_json_has_every_arm_its_spread_and_each_seed(bench: Bench) -> None:
    doc = as_json(bench)
    assert doc["seeds"] == SEEDS and [a["key"] for a in doc["arms"]] == ["none", "active", "v2"]
    active = doc["arms"][1]
    cash = active["figures"]["cash_collected"]["USD"]
    assert set(cash) == {"median", "p10", "p90", "seeds", "vs_no_follow_up"}
    assert Decimal(cash["vs_no_follow_up"]["median"]) > 0
    assert doc["arms"][0]["figures"]["messages_sent"]["vs_no_follow_up"] is None
    assert [run["seed"] for run in active["runs"]] == SEEDS
    assert isinstance(active["runs"][0]["cash_collected"]["USD"], str)


def test_the_spread_is_the_median_and_the_10th_to_90th_percentile() -> None:
    spread = Spread.of([Decimal(v) for v in range(1, 22)])  # 1..21
    assert spread == Spread(Decimal(11), Decimal(3), Decimal(19), 21)
    assert Spread.of([]) is None


def test_seeds_run_from_the_first_and_a_silly_count_is_refused() -> None:
    assert seeds_from(7, 20) == list(range(7, 27))
    with pytest.raises(UserError, match="--seeds: between 1 and 500"):
        seeds_from(7, 0)


def test_a_bench_refuses_a_silly_number_of_days() -> None:
    with pytest.raises(UserError, match="between 1 and 730 days"):
        run_bench(0, [1], BehaviourModel(), ledger(SMALL), [])


@pytest.mark.slow  # worker processes
def test_seeds_run_in_a_process_pool_give_the_same_figures() -> None:
    tiny = ledger(sample_rows(START, customers=4, invoices=10, seed=7))
    alone = run_bench(1, [5, 6], BehaviourModel(), tiny, ARMS[:1], start_day=START)
    pooled = run_bench(1, [5, 6], BehaviourModel(), tiny, ARMS[:1], start_day=START, workers=2)
    assert pooled == alone
    assert sum(run.messages for run in pooled.runs["active"]) > 0
