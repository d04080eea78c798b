"""The simulation: deterministic for a seed; under the default model following up never collects
less than not; the same outcome when reminders change nothing; a printout saying it is a model."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.errors import UserError
from bot.ledger.sample import sample_rows, write_csv
from bot.simulation.model import BehaviourModel, load_model
from bot.simulation.report import DISCLAIMER, SimulationResult, describe
from bot.simulation.run import simulate
from integrations.base.ledger import LedgerBatch
from integrations.csv_ledger import read_ledger_csv

START = date(2026, 3, 16)
DAYS = 12
SMALL = sample_rows(START, customers=12, invoices=30, seed=7)


def ledger(rows: list[dict[str, str]]) -> LedgerBatch:
    """The rows as the CLI hands them over: written to a ledger CSV and read back."""
    with tempfile.TemporaryDirectory() as folder:
        return read_ledger_csv(write_csv(Path(folder) / "ledger.csv", rows))


@pytest.fixture(scope="module")
def default_run() -> SimulationResult:
    return simulate(DAYS, seed=11, model=BehaviourModel(), ledger=ledger(SMALL), start_day=START)


def test_the_same_seed_gives_the_same_figures(default_run: SimulationResult) -> None:
    again = simulate(DAYS, seed=11, model=BehaviourModel(), ledger=ledger(SMALL), start_day=START)
    assert again == default_run


def test_following_up_collects_at_least_as_much_as_not_under_the_default_model(
    default_run: SimulationResult,
) -> None:
    result = default_run
    assert result.customers == 12 and result.invoices_at_start == 30
    assert sum(result.sent.values()) > 0
    difference = result.collected_difference()
    assert difference["USD"] > 0
    assert all(amount >= 0 for amount in difference.values())


def test_when_reminders_change_nothing_both_runs_collect_the_same() -> None:
    """Both runs draw the same number for the same invoice on the same day: with no lift from a
    reminder, following up makes no difference at all."""
    inert = replace(
        BehaviourModel(),
        pay_on_touch_day={"strategic": 0.0, "standard": 0.0, "transactional": 0.0},
        dispute_after_touch=0.0,
    )
    result = simulate(DAYS, seed=11, model=inert, ledger=ledger(SMALL), start_day=START)
    assert sum(result.sent.values()) > 0
    assert result.follow_up.collected == result.no_follow_up.collected
    assert result.follow_up.payments == result.no_follow_up.payments


def test_replies_and_disputes_follow_their_probabilities() -> None:
    chatty = replace(BehaviourModel(), reply_after_touch=1.0, dispute_after_touch=1.0)
    result = simulate(6, seed=11, model=chatty, ledger=ledger(SMALL), start_day=START)
    assert result.replies == result.disputes > 0
    quiet = replace(BehaviourModel(), reply_after_touch=0.0, dispute_after_touch=0.0)
    assert simulate(6, seed=11, model=quiet, ledger=ledger(SMALL), start_day=START).replies == 0


def test_describe_says_the_figures_come_from_the_model_not_from_real_customers(
    default_run: SimulationResult,
) -> None:
    text = describe(default_run)
    assert DISCLAIMER in text
    assert "not from real customers" in text
    assert "Cash collected (USD)" in text and "DSO on the last day (USD)" in text
    assert f"Simulated {DAYS} days (2026-03-16 to 2026-03-27), seed 11" in text


def test_the_chance_of_payment_rises_with_a_reminder_and_falls_with_age_and_dispute() -> None:
    model = BehaviourModel()
    quiet = model.pay_probability("standard", 10, None, False)
    assert model.pay_probability("standard", 10, "email", False) == pytest.approx(quiet + 0.10)
    assert model.pay_probability("standard", 10, "sms", False) == pytest.approx(quiet + 0.12)
    assert model.pay_probability("standard", 70, None, False) == pytest.approx(quiet / 2)
    assert model.pay_probability("standard", -5, None, False) == pytest.approx(0.01)
    assert model.pay_probability("standard", 10, "email", True) == pytest.approx(quiet / 2)


def test_a_model_file_overrides_some_names_and_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text("pay_daily: {standard: 0.05}\nreply_after_touch: 0.2\n")
    model = load_model(path)
    assert model.pay_daily == {"strategic": 0.025, "standard": 0.05, "transactional": 0.03}
    assert model.reply_after_touch == 0.2
    assert model.dispute_after_touch == BehaviourModel().dispute_after_touch


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("reply_after_touch: 1.5", "reply_after_touch: Input should be less than or equal to 1"),
        ("pay_daily: {premium: 0.1}", "pay_daily.premium"),
        ("pay_rate: 0.1", "pay_rate: Unexpected keyword argument"),
        ("- 0.1", "expected names and values"),
    ],
)
def test_a_bad_model_file_names_the_file_and_the_field(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "model.yml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: ") and named in str(caught.value)


def test_a_simulation_refuses_a_silly_number_of_days() -> None:
    with pytest.raises(UserError, match="between 1 and 730 days"):
        simulate(0, seed=1, model=BehaviourModel(), ledger=ledger(SMALL))


def test_money_in_the_result_is_decimal(default_run: SimulationResult) -> None:
    result = default_run
    for amount in result.follow_up.collected.values():
        assert isinstance(amount, Decimal)


def test_a_playbook_file_is_simulated_instead_of_the_bundled_one(tmp_path: Path) -> None:
    """A playbook that only ever hands accounts to a person sends nothing, so it collects what
    no follow-up collects."""
    ladder = "[{key: plus1, offset_days: 1, action: escalate}]"
    path = tmp_path / "people-only.yml"
    path.write_text(
        "name: people_only\ntiers:\n"
        + "".join(f"  {tier}: {ladder}\n" for tier in ("strategic", "standard", "transactional"))
    )
    result = simulate(
        6, seed=11, model=BehaviourModel(), ledger=ledger(SMALL), start_day=START, playbook=path
    )
    assert result.sent == {}
    assert result.follow_up.escalations > 0
    assert result.follow_up.collected == result.no_follow_up.collected
