"""One run of the simulation, and the behaviour model it runs against: the chance of payment,
and reading a model from a file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.core.errors import UserError
from bot.core.settings import load_settings
from bot.simulation.model import BehaviourModel, load_model
from bot.simulation.run import play

START = date(2026, 3, 16)


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


def test_a_model_path_that_is_no_readable_text_file_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="a folder, not a file"):
        load_model(tmp_path)
    binary = tmp_path / "model.yml"
    binary.write_bytes(b"reply_after_touch: \xff\xfe")
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 19\)"):
        load_model(binary)


def test_a_run_refuses_a_silly_number_of_days(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="between 1 and 730 days"):
        play(load_settings(env_file=None), tmp_path / "x.db", START, 0, 1, BehaviourModel(), True)
