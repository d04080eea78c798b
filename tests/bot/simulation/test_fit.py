"""Fitting the behaviour model to a ledger's own history: a planted payment habit is recovered,
reminders' effect is measured only when the history shows enough of them, and too little history
keeps the defaults and says so."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from bot.simulation.fit import MIN_PAID, InvoiceHistory, fit_model
from bot.simulation.fit_report import describe_fit, fit_json
from bot.simulation.model import BehaviourModel

AS_OF = date(2026, 3, 16)
WEEKDAYS = frozenset(range(5))
# customers who pay within about a week of the due date, far from the defaults' habit
PLANTED = replace(
    BehaviourModel(),
    pay_daily={"strategic": 0.08, "standard": 0.06, "transactional": 0.1},
    not_yet_due_factor=0.25,
    halving_days_overdue=45,
)


def synthetic(
    model: BehaviourModel, invoices: int, seed: int = 3, touch_every: int = 0
) -> list[InvoiceHistory]:
    """Invoices issued over the last 400 days, each paid on the first business day the model's
    draw says so (or still open); with `touch_every`, a reminder every that many days past due."""
    rng = random.Random(seed)
    tiers = ("strategic", "standard", "transactional")
    history = []
    for index in range(invoices):
        tier = tiers[index % 3]
        issued = AS_OF - timedelta(days=30 + rng.randrange(370))
        due = issued + timedelta(days=30)
        paid_on, touched = None, set()
        day = issued
        while day < AS_OF:
            if day.weekday() in WEEKDAYS:
                late = (day - due).days
                touch = bool(touch_every) and late > 0 and late % touch_every == 0
                if touch:
                    touched.add(day)
                p = model.pay_probability(tier, late, "email" if touch else None, False)
                if rng.random() < p:
                    paid_on = day
                    break
            day += timedelta(days=1)
        history.append(InvoiceHistory(tier, issued, due, paid_on, frozenset(touched)))
    return history


def test_the_fit_recovers_a_planted_habit_of_paying_late() -> None:
    history = synthetic(PLANTED, 600)
    fit = fit_model(history, AS_OF, WEEKDAYS)
    assert fit.fitted and fit.paid > 400
    observed = fit.history.mean_days_late
    assert observed is not None and 2 < observed < 12  # the defaults imply three weeks
    # the fitted model implies the planted habit; the defaults do not
    assert fit.with_fitted.mean_days_late == pytest.approx(observed, abs=2.5)
    assert fit.with_defaults.mean_days_late is not None
    assert abs(fit.with_defaults.mean_days_late - observed) > 10
    assert fit.model.pay_daily["standard"] == pytest.approx(0.06, rel=0.35)
    assert fit.model.halving_days_overdue in (30, 45, 60)


def test_a_reminder_lift_is_measured_when_the_history_has_enough_reminder_days() -> None:
    history = synthetic(PLANTED, 600, touch_every=7)
    fit = fit_model(history, AS_OF, WEEKDAYS)
    assert fit.touch_days >= 50
    lift = fit.model.pay_on_touch_day["standard"]
    assert lift == pytest.approx(0.10, abs=0.05)  # the planted model's email lift
    assert len(set(fit.model.pay_on_touch_day.values())) == 1  # one lift for every tier


def test_without_reminders_in_the_history_their_effect_keeps_its_default() -> None:
    fit = fit_model(synthetic(PLANTED, 300), AS_OF, WEEKDAYS)
    assert fit.fitted and fit.touch_days == 0
    assert fit.model.pay_on_touch_day == BehaviourModel().pay_on_touch_day
    assert any(note.startswith("pay_on_touch_day: only 0 days") for note in fit.notes)


def test_too_little_history_keeps_the_defaults_and_says_so() -> None:
    history = synthetic(PLANTED, 40)[:25]
    fit = fit_model(history, AS_OF, WEEKDAYS)
    assert fit.paid < MIN_PAID
    assert not fit.fitted and fit.model == BehaviourModel()
    text = describe_fit(fit, BehaviourModel())
    assert f"at least {MIN_PAID} are needed to fit the model, so the defaults are kept" in text
    assert "The simulation below runs on the defaults." in text
    assert fit_json(fit, BehaviourModel())["fitted"] is False


def test_the_printout_shows_each_fitted_number_beside_its_default() -> None:
    fit = fit_model(synthetic(PLANTED, 300), AS_OF, WEEKDAYS)
    text = describe_fit(fit, BehaviourModel())
    line = next(row for row in text.splitlines() if row.startswith("pay_daily.standard"))
    assert line.split()[1:] == ["0.02", f"{fit.model.pay_daily['standard']:g}"]
    assert "Mean days after due (paid)" in text and "Unpaid a year after issue" in text
    doc = fit_json(fit, BehaviourModel())
    assert doc["parameters"]["halving_days_overdue"]["default"] == "60"
