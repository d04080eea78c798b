"""The pilot against the observed segment, and the followed-up group against the control group,
on ledgers whose answers are worked out by hand: the sentence carries the difference, its
interval and the customers behind it, or says "not enough data yet"."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import ControlAssignment, Customer, Invoice
from bot.core.runtime import Runtime
from bot.learning.comparison import (
    CONTROL_DESIGN,
    NOT_ENOUGH,
    PILOT_DESIGN,
    Comparison,
    Unavailable,
    compare,
)
from bot.learning.report import build_report, report_text, write_report
from bot.learning.weekly_review import review_text, weekly_review
from bot.payments.record import cancel_for_invoices, record_payment
from bot.planning.planner import Pilot
from tests.bot.learning.test_outcomes import TODAY, ZONE, Ledger, at
from tests.conftest import NOW

UNTIL = TODAY - timedelta(days=1)
SINCE = UNTIL - timedelta(days=8 * 7 - 1)  # eight weeks
PILOT = Pilot(tiers=frozenset({"strategic"}))


def paying(ledger: Ledger, tier: str, days_late: list[int], total: str = "100.00") -> list[int]:
    """One customer per entry, with one invoice due four weeks ago paid `days_late` days after
    its due date (each payment inside the eight weeks): written as `ledger` writes them, in one
    transaction, the payments recorded as a bank file is (each new, written together)."""
    due = UNTIL - timedelta(days=40)
    issued = due - timedelta(days=30)
    with ledger.runtime.writing() as session:
        numbers = [next(ledger._ids) for _ in days_late]
        customers = [
            Customer(
                source="csv",
                external_id=f"C-{n}",
                name=f"Customer {n}",
                tier=tier,
                created_at=NOW,
                updated_at=NOW,
            )
            for n in numbers
        ]
        session.add_all(customers)
        session.flush()
        invoices = []
        for customer in customers:
            n = next(ledger._ids)
            invoices.append(
                Invoice(
                    customer_id=customer.id,
                    source="csv",
                    external_id=f"INV-{n}",
                    number=f"INV-{n}",
                    issue_date=issued,
                    due_date=due,
                    currency="USD",
                    total=Decimal(total),
                    balance=Decimal(total),
                    status="open",
                    created_at=at(issued),
                    updated_at=at(issued),
                )
            )
        session.add_all(invoices)
        session.flush()
        with session.no_autoflush:
            for invoice, late in zip(invoices, days_late, strict=True):
                record_payment(
                    session,
                    source="bank",
                    external_id=f"pay-{next(ledger._ids)}",
                    customer_id=invoice.customer_id,
                    received_on=due + timedelta(days=late),
                    amount=Decimal(total),
                    currency="USD",
                    invoice_ids=[invoice.id],
                    now=NOW,
                    known_new=True,
                    cancel=False,
                )
        cancel_for_invoices(session, [invoice.id for invoice in invoices], NOW)
        return [customer.id for customer in customers]


def compared(runtime: Runtime, pilot: Pilot | None = PILOT) -> Comparison:
    with runtime.sessions() as session:
        found = compare(session, SINCE, UNTIL, timezone=ZONE, pilot=pilot)
    assert isinstance(found, Comparison), found
    return found


def test_the_sentence_gives_the_difference_its_interval_and_the_customers(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    paying(ledger, "strategic", [3, 4, 5, 6, 7] * 3)  # 5 days late on average
    paying(ledger, "standard", [13, 14, 15, 16, 17] * 2 + [15, 15])  # 15

    found = compared(runtime)
    row = found.headline
    assert found.design == PILOT_DESIGN
    assert (row.followed, row.baseline) == (5.0, 15.0)
    assert (row.followed_customers, row.baseline_customers) == (15, 12)
    assert row.gain is not None and row.conclusive
    gain, low, high = row.gain
    assert gain == 10.0
    assert 8.0 < low < 10.0 < high < 12.0
    assert found.sentence() == (
        f"the pilot segment pays 10.0 days sooner (95% CI {low:.1f}\N{EN DASH}{high:.1f}) "
        "over 8 weeks, 15 customers against 12"
    )
    assert row.gain_text() == "10.0 days sooner"
    by30 = next(r for r in found.rows if r.key == "by30")
    assert (by30.followed, by30.baseline) == (100.0, 100.0)  # all paid within 30 days
    assert by30.gain_text() == NOT_ENOUGH
    assert [r.key for r in found.rows] == ["late", "by30", "dso:USD", "cash:USD"]
    cash = next(r for r in found.rows if r.key == "cash:USD")
    assert cash.followed == pytest.approx(100.0 / 8)  # one 100.00 payment in eight weeks


def test_later_payers_read_later_and_the_interval_is_turned_round(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    paying(ledger, "strategic", [20, 21, 22, 23, 24] * 2)
    paying(ledger, "standard", [1, 2, 3, 4, 5] * 2)
    sentence = compared(runtime).sentence()
    match = re.fullmatch(
        r"the pilot segment pays 19\.0 days later \(95% CI (\d+\.\d)\N{EN DASH}(\d+\.\d)\) "
        r"over 8 weeks, 10 customers against 10",
        sentence,
    )
    assert match, sentence
    assert float(match[1]) <= 19.0 <= float(match[2])


def test_below_the_thresholds_it_says_not_enough_data_yet(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    paying(ledger, "strategic", [3, 4, 5])  # three customers: fewer than five
    paying(ledger, "standard", [13, 14, 15, 16, 17, 18])
    found = compared(runtime)
    assert found.headline.gain is None
    assert found.sentence() == (
        "the pilot segment against the observed segment over 8 weeks, "
        f"3 customers against 6: {NOT_ENOUGH}"
    )
    assert "fewer than 5 customers" in found.headline.interval_text()


def test_a_difference_lost_in_the_spread_is_not_enough_data_yet(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    paying(ledger, "strategic", [0, 30, 2, 28, 5, 25, 1])
    paying(ledger, "standard", [1, 29, 3, 27, 6, 24, 2])
    found = compared(runtime)
    assert found.headline.gain is not None
    assert not found.headline.conclusive
    assert found.sentence().endswith(f"7 customers against 7: {NOT_ENOUGH}")


def test_the_control_group_is_the_baseline_when_a_holdout_ran(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    followed = paying(ledger, "standard", [3, 4, 5, 6, 7])
    held_out = paying(ledger, "standard", [13, 14, 15, 16, 17])
    drawn = at(SINCE - timedelta(days=30))
    with runtime.writing() as session:
        for customer_id in followed + held_out:
            session.add(
                ControlAssignment(
                    customer_id=customer_id,
                    grp="control" if customer_id in held_out else "followed",
                    assigned_at=drawn,
                    share=Decimal("0.5"),
                )
            )
    found = compared(runtime, pilot=None)  # the holdout needs no pilot scope
    assert found.design == CONTROL_DESIGN
    assert found.sentence().startswith(
        "the followed-up group pays 10.0 days sooner than the control group (95% CI "
    )
    assert found.sentence().endswith("over 8 weeks, 5 customers against 5")
    assert "share 0.5 for 10 customers" in found.notes[0]


def test_without_a_pilot_scope_or_a_holdout_there_is_nothing_to_compare(
    runtime: Runtime,
) -> None:
    paying(Ledger(runtime), "standard", [1, 2])
    with runtime.sessions() as session:
        found = compare(session, SINCE, UNTIL, timezone=ZONE, pilot=Pilot(max_invoices=10))
        assert isinstance(found, Unavailable)
        assert "ARBOT_CONTROL_SHARE" in found.reason
        only_pilot = compare(session, SINCE, UNTIL, timezone=ZONE, pilot=PILOT)
        assert isinstance(only_pilot, Unavailable)
        assert "pilot segment has no customers" in only_pilot.reason


def two_segments(runtime: Runtime) -> None:
    ledger = Ledger(runtime)
    paying(ledger, "strategic", [3, 4, 5, 6, 7] * 2)
    paying(ledger, "standard", [13, 14, 15, 16, 17] * 2)


def test_the_weekly_review_carries_the_sentence(runtime: Runtime) -> None:
    two_segments(runtime)
    with runtime.sessions() as session:
        review = weekly_review(session, TODAY, ZONE, pilot=PILOT)
        nothing = weekly_review(session, TODAY, ZONE)
    assert review.comparison is not None
    assert review.comparison.startswith("the pilot segment pays 10.0 days sooner (95% CI ")
    assert review.comparison.endswith(" over 12 weeks, 10 customers against 10")
    assert f"• Follow-up compared: {review.comparison}" in review_text(review).splitlines()
    assert nothing.comparison is None  # no pilot scope, no holdout: no line
    assert "compared" not in review_text(nothing)


@pytest.mark.slow  # renders the charts
def test_index_html_carries_the_comparison_its_table_and_its_chart(
    runtime: Runtime, tmp_path: Path
) -> None:
    two_segments(runtime)
    with runtime.sessions() as session:
        written = write_report(session, TODAY, tmp_path, timezone=ZONE, weeks=8, pilot=PILOT)
        report = build_report(session, TODAY, timezone=ZONE, weeks=8, pilot=PILOT)
    assert isinstance(report.comparison, Comparison)
    names = [p.name for p in written]
    assert names[:2] == ["dso.png", "comparison.png"]
    page = (tmp_path / "index.html").read_text()
    sentence = report.comparison.sentence()
    assert f"<strong>T{sentence[1:]}.</strong>" in page
    assert "<h2>Follow-up compared</h2>" in page
    assert "<th>Pilot segment</th>" in page and "<th>Observed segment</th>" in page
    for row in report.comparison.rows:
        assert f"<td>{row.title}</td>" in page
    assert "<td>10.0 days sooner</td>" in page
    assert '<img src="comparison.png"' in page
    assert sentence in report_text(report)


@pytest.mark.slow
def test_index_html_says_why_there_is_nothing_to_compare(runtime: Runtime, tmp_path: Path) -> None:
    two_segments(runtime)
    with runtime.sessions() as session:
        write_report(session, TODAY, tmp_path, timezone=ZONE, weeks=8)
    page = (tmp_path / "index.html").read_text()
    assert "no comparison: arbot follows up the whole book" in page
    assert not (tmp_path / "comparison.png").exists()


@pytest.mark.slow
def test_arbot_report_compares_the_pilot_scope_of_the_settings(
    runtime: Runtime, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_segments(runtime)
    monkeypatch.setenv("ARBOT_PILOT_TIERS", "strategic")
    result = cli("report", "--out", str(tmp_path / "out"), "--weeks", "8")
    assert result.code == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "The pilot segment pays 10.0 days sooner (95% CI " in page
    assert (tmp_path / "out" / "comparison.png").exists()


def test_the_comparison_names_each_share_the_control_group_was_drawn_with(
    runtime: Runtime,
) -> None:
    ledger = Ledger(runtime)
    customers = paying(ledger, "standard", [3, 4, 5, 13, 14, 15])
    with runtime.writing() as session:
        for n, customer_id in enumerate(customers):
            session.add(
                ControlAssignment(
                    customer_id=customer_id,
                    grp="control" if n >= 3 else "followed",
                    assigned_at=at(SINCE - timedelta(days=20 if n % 2 else 10)),
                    share=Decimal("0.1") if n % 2 else Decimal("0.2"),
                )
            )
    notes = compared(runtime, pilot=None).notes
    first, second = SINCE - timedelta(days=20), SINCE - timedelta(days=10)
    assert notes == [
        "Control group drawn at random (ARBOT_CONTROL_SHARE): "
        f"share 0.1 for 3 customers drawn {first} to {first}; "
        f"share 0.2 for 3 customers drawn {second} to {second}. "
        "The share changed: customers keep the group they were drawn into."
    ]


def test_an_ended_holdout_is_compared_over_the_weeks_it_ran_and_the_report_says_when_it_ended(
    runtime: Runtime,
) -> None:
    from bot.planning import control

    ledger = Ledger(runtime)
    followed = paying(ledger, "standard", [3, 4, 5, 6, 7])
    held_out = paying(ledger, "standard", [13, 14, 15, 16, 17])
    drawn, ended = at(SINCE - timedelta(days=30)), at(UNTIL - timedelta(days=14))
    with runtime.writing() as session:
        control.ensure_holdout(session, Decimal("0.5"), drawn)
        for customer_id in followed + held_out:
            session.add(
                ControlAssignment(
                    customer_id=customer_id,
                    grp="control" if customer_id in held_out else "followed",
                    assigned_at=drawn,
                    share=Decimal("0.5"),
                )
            )
        session.flush()
        control.end_holdout(session, "alice", ended, Decimal(0))
    found = compared(runtime, pilot=None)
    end_day = (UNTIL - timedelta(days=14)).isoformat()
    assert found.design == CONTROL_DESIGN
    assert (found.until, found.ended) == ((UNTIL - timedelta(days=14)),) * 2
    assert found.sentence().startswith(
        "the followed-up group pays 10.0 days sooner than the control group (95% CI "
    )
    assert found.sentence().endswith(
        f"over 6 weeks, 5 customers against 5 (the holdout ended on {end_day})"
    )
    assert found.notes[-1] == (
        f"The holdout ended on {end_day} (by alice): its control group is followed up since, "
        "so the comparison covers the weeks it ran, up to that day."
    )
    with runtime.sessions() as session:
        later = compare(
            session, UNTIL - timedelta(days=7), UNTIL + timedelta(days=7), timezone=ZONE
        )
    assert isinstance(later, Unavailable)
    assert later.reason.startswith(f"no comparison: the holdout ended on {end_day}, before")
