"""`arbot forecast`: learned from the payments arbot knows of, each open invoice's expected payment
date, and the cash expected week by week per currency."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.forecasting.cash import Week
from bot.forecasting.model import (
    Line,
    PaymentRecord,
    fit,
    kaplan_meier,
    trends,
    within_habit,
)
from tests.bot.forecasting.history_files import AS_OF, history_ledger
from tests.bot.learning.test_report import chart_size, png_size
from tests.support.ledger_files import row, write


def test_a_customer_who_always_pays_ten_days_late_is_expected_ten_days_late() -> None:
    records = [
        PaymentRecord("steady", date(2025, 1, 1) + timedelta(days=30 * n), None) for n in range(12)
    ]
    records = [
        PaymentRecord(r.customer, r.due_date, r.due_date + timedelta(days=10)) for r in records
    ]
    records += [
        PaymentRecord(
            f"other-{n}",
            date(2025, 6, 1) + timedelta(days=n),
            date(2025, 6, 1) + timedelta(days=2 * n),
        )
        for n in range(30)
    ]
    model = fit(records, date(2026, 3, 1))
    due = date(2026, 3, 10)

    predicted = model.predict("steady", due)

    assert predicted.expected_pay_date == due + timedelta(days=10)
    assert predicted.basis == "customer"
    assert predicted.p_paid_by_due_plus_30 > 0.9
    assert model.profile("steady").usual_days_late == 10


def test_a_new_customer_gets_the_books_behaviour_and_says_so() -> None:
    records = [
        PaymentRecord(f"c{n}", date(2025, 6, 1), date(2025, 6, 1) + timedelta(days=20))
        for n in range(20)
    ]
    model = fit(records, date(2026, 3, 1))

    predicted = model.predict("never-seen", date(2026, 3, 10))

    assert predicted.basis == "portfolio"
    assert predicted.expected_pay_date == date(2026, 3, 30)


def monthly(customer: str, days_late: list[int], first_due: date) -> list[PaymentRecord]:
    """A customer's invoices due a month apart, each paid `days_late[n]` days after its due date."""
    dues = [first_due + timedelta(days=30 * n) for n in range(len(days_late))]
    return [
        PaymentRecord(customer, due, due + timedelta(days=late))
        for due, late in zip(dues, days_late, strict=True)
    ]


def test_an_invoice_already_far_past_its_customers_usual_lateness_is_expected_later_still() -> None:
    """Ten days late as a rule; one invoice already 40 days past due is not paid 10 days late:
    what the book saw paid later than 40 days after its usual says when."""
    start = date(2025, 1, 1)
    records = monthly("steady", [10, 9, 11, 10, 10, 12, 8, 10, 11, 9, 10, 10], start)
    for n in range(20):  # the book: mostly prompt, a few paid two months past their usual
        records += monthly(f"c{n}", [0, 1, -1, 0, 60 + n if n % 4 == 0 else 0, 1], start)
    as_of = date(2026, 3, 1)
    model = fit(records, as_of)
    fresh = model.predict("steady", date(2026, 3, 10))
    overdue_since = as_of - timedelta(days=40)

    late = model.predict("steady", overdue_since)

    assert fresh.expected_pay_date == date(2026, 3, 20)  # its usual 10 days late
    assert (late.expected_pay_date - overdue_since).days > 50  # past its usual by the book's tail
    assert late.expected_pay_date > as_of
    assert late.p_paid_by_due_plus_30 == 0  # that day has passed
    assert late.basis == "customer"


def test_the_chance_of_payment_within_30_days_agrees_with_the_expected_date() -> None:
    """The expected date is the median of what remains: within 30 days of the due date exactly
    when the chance of being paid by then is at least a half."""
    start = date(2025, 1, 1)
    records = monthly("prompt", [2, 3, 1, 2, 4, 2, 3, 2], start)
    records += monthly("slow", [44, 46, 45, 43, 47, 45, 44, 46], start)
    records += monthly("mixed", [10, 50, 12, 48, 11, 52, 9, 49], start)
    model = fit(records, date(2026, 3, 1))

    for customer in ("prompt", "slow", "mixed", "never-seen"):
        for due in (date(2026, 2, 20), date(2026, 3, 10), date(2026, 4, 1)):
            predicted = model.predict(customer, due)
            within = predicted.expected_pay_date <= due + timedelta(days=30)
            assert within == (predicted.p_paid_by_due_plus_30 >= 0.5), (customer, due)
    assert model.predict("prompt", date(2026, 3, 10)).p_paid_by_due_plus_30 > 0.9
    assert model.predict("slow", date(2026, 3, 10)).p_paid_by_due_plus_30 < 0.2


def test_a_customer_paying_later_and_later_is_expected_along_its_trend() -> None:
    """A day later every month for two years, among customers who keep their habits: its next
    invoice is expected about as late as the trend has reached, not at its (recent) average."""
    start = date(2024, 3, 1)
    records = monthly("drifting", list(range(24)), start)
    for n in range(10):
        records += monthly(f"c{n}", [(n + 3 * k) % 7 - 3 for k in range(24)], start)
    as_of = start + timedelta(days=30 * 24)
    model = fit(records, as_of)
    due = as_of + timedelta(days=10)

    predicted = model.predict("drifting", due)

    assert (predicted.expected_pay_date - due).days >= 23
    assert model.profile("drifting").usual_days_late == 17  # "usually pays": the last 12 paid
    steady = model.predict("c0", due)
    assert abs((steady.expected_pay_date - due).days) <= 3


def test_disputes_paid_months_late_do_not_hide_a_customers_trend() -> None:
    """A day later every month for two years, two of its invoices disputed and paid two months
    later still: those two are left out of its line, so its next invoice is still expected
    about as late as the trend has reached (with them in, the line is too uncertain to believe
    and it would be expected at its average)."""
    start = date(2024, 3, 1)
    days_late = list(range(24))
    days_late[6] += 60
    days_late[15] += 60
    records = monthly("drifting", days_late, start)
    for n in range(10):
        records += monthly(f"c{n}", [(n + 3 * k) % 7 - 3 for k in range(24)], start)
    as_of = start + timedelta(days=30 * 24)
    model = fit(records, as_of)
    due = as_of + timedelta(days=10)

    predicted = model.predict("drifting", due)

    assert (predicted.expected_pay_date - due).days >= 23
    assert abs((model.predict("c0", due).expected_pay_date - due).days) <= 3


def test_only_invoices_paid_far_outside_a_customers_habit_are_left_out_of_its_trend() -> None:
    """Tukey's resistant line through a customer's days late: a dispute paid 60 days late is left
    out; a steady payer's noise, a drift and too short a history are kept whole."""
    drifting = [(-30 * k, 20 - k + (k * 5) % 3) for k in range(12)]
    disputed = (-30 * 4, 20 - 4 + 60)

    assert sorted(within_habit([*drifting, disputed])) == sorted(drifting)
    assert sorted(within_habit(drifting)) == sorted(drifting)
    few = [(-30, 5), (-60, 4), (-90, 70), (-120, 6), (-150, 5)]  # fewer than six: all kept
    assert within_habit(few) == few
    same_day = [(-30, 5)] * 5 + [(-30, 90)]  # no line to stand on: all kept
    assert within_habit(same_day) == same_day


def test_a_trend_the_whole_book_shares_is_no_customers_own() -> None:
    """Trends are believed by how much customers' trends differ: when every customer's is the
    same, none is given one (the recency weighting follows the book as a whole)."""

    def lines(history: dict[str, list[tuple[int, int]]]) -> dict[str, Line]:
        return {customer: Line.of(points) for customer, points in history.items()}

    history = {f"c{n}": [(-30 * k, k // 3 + (k * 5) % 3) for k in range(12)] for n in range(8)}
    few = {"a": [(-30, 5), (-60, 1), (-90, 9)], "b": [(-30, 1), (-60, 2), (-90, 30)]}

    assert trends(lines(history)) == {}
    assert trends(lines(few)) == {}  # fewer than four paid invoices each: no line to believe
    history["drifting"] = [(-30 * k, 40 - 2 * k) for k in range(12)]
    believed = trends(lines(history))
    assert 0.05 < believed["drifting"] <= 2 / 30  # two days a month, shrunk a little


def test_invoices_still_open_count_as_not_paid_yet_not_as_missing() -> None:
    """Kaplan-Meier: two paid at 5 days, two still open at 30 days: half the mass is beyond 30
    days, not all of it at 5 (which dropping the open ones would say)."""
    days_late = kaplan_meier([(5, True, 1.0), (5, True, 1.0), (30, False, 1.0), (30, False, 1.0)])

    assert days_late.at_least(6) == 0.5
    assert days_late.at_least(31) == 0.5


def test_forecast_json_has_the_documented_shape_and_learns_from_imported_payments(
    cli: Any, tmp_path: Path
) -> None:
    history_ledger(tmp_path, cli)

    result = cli("forecast", "--json")

    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"as_of", "invoices", "weeks"}
    assert doc["as_of"] == AS_OF.isoformat()
    by_number = {i["number"]: i for i in doc["invoices"]}
    assert set(by_number) == {"INV-1-OPEN", "INV-2-OPEN", "INV-3-OPEN"}
    for invoice in doc["invoices"]:
        assert {
            "number",
            "customer",
            "due_date",
            "expected_pay_date",
            "p_paid_by_due_plus_30",
        } <= set(invoice)
        assert 0 <= invoice["p_paid_by_due_plus_30"] <= 1
    steady = by_number["INV-1-OPEN"]
    assert (steady["customer"], steady["due_date"]) == ("C-1", "2026-03-20")
    assert steady["expected_pay_date"] == "2026-03-30"  # paid 10 days late, 12 times
    assert steady["basis"] == "customer"
    # Three payments on the due date, shrunk a little toward the book's habit:
    assert by_number["INV-2-OPEN"]["expected_pay_date"] in ("2026-03-22", "2026-03-23")
    assert by_number["INV-3-OPEN"]["basis"] == "portfolio"  # no history: the book's behaviour
    assert len(doc["weeks"]) == 13
    assert doc["weeks"][0]["week_start"] == "2026-03-16"  # the Monday of the as-of day's week
    assert all(set(w) == {"week_start", "expected"} for w in doc["weeks"])


def test_weeks_add_up_to_the_open_balance_per_currency(cli: Any, tmp_path: Path) -> None:
    """Every history in this ledger pays within 13 weeks, so the weeks hold each currency's whole
    open balance, and no currency's money lands in another's column."""
    history_ledger(tmp_path, cli)

    doc = json.loads(cli("forecast", "--json", "--weeks", "13").stdout)

    totals: dict[str, Decimal] = {}
    for week in doc["weeks"]:
        for currency, amount in week["expected"].items():
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    assert set(totals) == {"USD", "EUR"}
    assert abs(totals["USD"] - Decimal("2700.00")) <= Decimal("0.05")
    assert abs(totals["EUR"] - Decimal("900.00")) <= Decimal("0.05")
    expected_week = next(w for w in doc["weeks"] if w["week_start"] == "2026-03-30")
    assert Decimal(expected_week["expected"]["USD"]) >= Decimal("1500")  # most of C-1's 2,000


def test_forecast_table_and_bad_weeks(cli: Any, tmp_path: Path) -> None:
    history_ledger(tmp_path, cli)

    shown = cli("forecast", "--weeks", "4")
    refused = cli("forecast", "--weeks", "0")

    assert shown.code == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "Expected cash in, by week, as of 2026-03-16" in text
    assert "INV-3-OPEN" in text and "the whole book (no history)" in text
    assert refused.code == 1 and "--weeks 0" in refused.stderr


@pytest.mark.slow  # matplotlib renders the chart
def test_the_forecast_chart_is_a_png_of_the_fixed_size_that_shows_the_weeks() -> None:
    from bot.learning.charts import forecast_chart

    weeks = [
        Week(AS_OF + timedelta(weeks=n), {"USD": Decimal(100 * n), "EUR": Decimal(7)})
        for n in range(13)
    ]

    drawn = forecast_chart(weeks, "USD")

    assert png_size(drawn) == chart_size()
    assert forecast_chart(weeks, "USD") == drawn  # the same figures give the same bytes
    assert forecast_chart(weeks, "EUR") != drawn
    assert Week(AS_OF, {}).last_day == date(2026, 3, 22)  # a week labelled by its Sunday


def test_a_disputed_invoice_is_expected_later_by_what_disputes_cost_the_book() -> None:
    start = date(2025, 1, 1)
    records = [
        PaymentRecord(f"c{n}", start + timedelta(days=n), start + timedelta(days=n + 5))
        for n in range(40)
    ] + [
        PaymentRecord(f"d{n}", start + timedelta(days=n), start + timedelta(days=n + 35), True)
        for n in range(8)
    ]
    model = fit(records, date(2026, 3, 1))
    due = date(2026, 3, 10)

    plain = model.predict("c1", due)
    disputed = model.predict("c1", due, disputed=True)

    assert plain.expected_pay_date == due + timedelta(days=5)
    assert (disputed.expected_pay_date - plain.expected_pay_date).days >= 20


def test_a_ledger_with_no_payment_yet_says_there_is_nothing_to_learn_from(
    cli: Any, tmp_path: Path
) -> None:
    rows = [row(invoice_number="INV-9", due_date="2026-03-01")]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0

    shown = cli("forecast")
    doc = json.loads(cli("forecast", "--json").stdout)

    assert "No invoice of this ledger has been paid yet" in " ".join(shown.stdout.split())
    assert doc["invoices"][0]["basis"] == "portfolio"
    assert all(week["expected"] == {} for week in doc["weeks"])


def test_invoices_seen_paid_only_today_are_not_called_unpaid(cli: Any, tmp_path: Path) -> None:
    """A first import of a ledger file sees its paid invoices (balance 0) paid today: the forecast
    must not say none was paid, but that no payment day is known yet."""
    rows = [
        row(invoice_number="INV-8", due_date="2026-02-01", balance="0.00"),
        row(invoice_number="INV-9", due_date="2026-03-01"),
    ]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0

    shown = " ".join(cli("forecast").stdout.split())

    assert "No invoice of this ledger has been paid yet" not in shown
    assert "1 paid invoice of this ledger was paid only on or after" in shown
    assert "give the ledger file's paid_date column" in shown


@pytest.mark.slow  # the report draws its charts
def test_the_report_page_says_when_there_is_nothing_to_learn_from(cli: Any, tmp_path: Path) -> None:
    rows = [row(invoice_number="INV-9", due_date="2026-03-01")]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0

    made = cli("report", "--out", str(tmp_path / "out"))

    assert made.code == 0, made.stderr
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "No invoice of this ledger has been paid yet" in page
