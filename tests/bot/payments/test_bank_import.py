"""`arbot import-payments` end to end: the bank CSV matched against the ledger, what is applied,
what waits for a person in Slack, and re-importing the same file changing nothing."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.models import Invoice, Payment, PaymentAllocation, PaymentReview, Reminder
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from bot.payments import reviews as review_posting
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

HEADER = ["date", "amount", "currency", "reference", "payer"]


def _bank(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _ledger(tmp_path: Path) -> Path:
    return write(
        tmp_path / "ledger.csv",
        [
            row(
                invoice_number="INV-1001",
                amount="1200.00",
                balance="1200.00",
                due_date="2026-03-09",
            ),
            row(
                invoice_number="INV-1002", amount="450.00", balance="450.00", due_date="2026-03-09"
            ),
            row(
                customer_id="C-2",
                customer_name="Harbor Dental LLC",
                invoice_number="INV-2001",
                amount="800.00",
                balance="800.00",
                email="billing@harbor.example",
                due_date="2026-03-09",
            ),
            row(
                customer_id="C-2",
                customer_name="Harbor Dental LLC",
                invoice_number="INV-2002",
                amount="800.00",
                balance="800.00",
                email="billing@harbor.example",
                due_date="2026-03-10",
            ),
        ],
    )


def _balances(database_url: str) -> dict[str, tuple[Decimal, str]]:
    runtime = start(load_settings(env_file=None, database_url=database_url), upgrade=False)
    try:
        with runtime.sessions() as session:
            rows = session.execute(select(Invoice.number, Invoice.balance, Invoice.status)).all()
            return {n: (b, s) for n, b, s in rows}
    finally:
        runtime.close()


def test_import_payments_applies_the_sure_ones_and_holds_the_rest(
    cli: Any, database_url: str, tmp_path: Path
) -> None:
    assert cli("import-csv", str(_ledger(tmp_path))).code == 0
    bank = _bank(
        tmp_path / "bank.csv",
        [
            ["2026-03-14", "1200.00", "USD", "Payment INV-1001 thanks", "RIDGELINE ROOFING"],
            ["2026-03-14", "800.00", "USD", "March", "Harbor Dental"],  # two invoices of 800
            ["2026-03-14", "99.00", "USD", "", "Nobody we know"],
        ],
    )

    result = cli("import-payments", str(bank), "--json")

    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["applied"], doc["to_review"], doc["already_imported"]) == (1, 2, 0)
    assert doc["invoices_paid"] == 1
    balances = _balances(database_url)
    assert balances["INV-1001"] == (Decimal(0), "paid")
    assert balances["INV-2001"] == (Decimal("800.00"), "open")  # ambiguous: a person decides
    assert balances["INV-2002"] == (Decimal("800.00"), "open")

    again = cli("import-payments", str(bank), "--json")

    assert json.loads(again.stdout)["already_imported"] == 3
    assert _balances(database_url) == balances


def test_a_bad_bank_file_says_which_row_and_field_and_imports_nothing(
    cli: Any, database_url: str, tmp_path: Path
) -> None:
    assert cli("import-csv", str(_ledger(tmp_path))).code == 0
    bank = _bank(
        tmp_path / "bank.csv",
        [
            ["2026-03-14", "1200.00", "USD", "INV-1001", "Ridgeline"],
            ["2026-03-14", "12,00.0x", "USD", "INV-1002", "Ridgeline"],
        ],
    )

    result = cli("import-payments", str(bank))

    assert result.code == 1
    assert "bank.csv" in result.stderr and "row 3" in result.stderr and "amount" in result.stderr
    assert _balances(database_url)["INV-1001"] == (Decimal("1200.00"), "open")


@pytest.fixture
def ledger_runtime(runtime: Runtime, tmp_path: Path) -> Runtime:
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(_ledger(tmp_path)), runtime.clock.now())
        run_plan(
            session,
            PlanRules.from_settings(runtime.settings),
            runtime.today(),
            runtime.clock.now(),
            False,
        )
    return runtime


def test_a_person_picks_one_candidate_once(ledger_runtime: Runtime, tmp_path: Path) -> None:
    rt = ledger_runtime
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        summary = bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    [review_id] = summary.reviews

    with rt.writing() as session:
        result, outcome = bank_import.decide_review(
            session, review_id, 1, "U0APPROVER", rt.clock.now()
        )
    with rt.writing() as session:
        second, _ = bank_import.decide_review(session, review_id, 0, "U0SECOND", rt.clock.now())

    assert result == "applied" and second.startswith("already applied")
    with rt.sessions() as session:
        balances = dict(session.execute(select(Invoice.number, Invoice.balance)).all())
        allocated = session.scalar(select(func.sum(PaymentAllocation.amount)))
        cancelled = session.scalars(
            select(Reminder.cancel_reason).where(Reminder.state == "cancelled")
        ).all()
    assert balances["INV-2002"] == Decimal(0) and balances["INV-2001"] == Decimal("800.00")
    assert allocated == Decimal("800.00")  # never more than the payment, never twice
    assert len(outcome.closed) == 1
    # Harbor's one reminder quoted both invoices: its amounts are stale now
    assert cancelled == ["superseded"]


def test_review_messages_fit_slacks_limits_and_carry_the_options(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from tests.support.fake_slack import validate_blocks

    rt = ledger_runtime
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    posted = review_posting.post_open(
        rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0FIN"
    )
    assert len(posted) == 1
    message = slack_api.calls("chat.postMessage")[-1]
    assert validate_blocks(message["blocks"]) == []
    text = json.dumps(message["blocks"])
    assert "INV-2001" in text and "INV-2002" in text and "Leave unmatched" in text
    with rt.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        assert review.slack_ts is not None
        assert session.scalar(select(func.count()).select_from(Payment)) == 1


def test_a_review_slack_did_not_take_is_posted_by_the_next_sweep(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from bot.escalations.sweeps import sweep

    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "channel_not_found")
    assert review_posting.post_open(rt, chat, "C0FIN") == []

    settings = rt.settings.model_copy(update={"finance_channel": "C0FIN"})
    rt.settings = settings  # type: ignore[misc]
    report = sweep(rt, chat)

    assert len(report.reviews_posted) == 1
    with rt.sessions() as session:
        assert session.scalars(select(PaymentReview.slack_ts)).one() is not None


def test_a_review_another_process_is_posting_is_left_to_it_until_its_claim_lapses(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    from datetime import timedelta

    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
        review = session.scalars(select(PaymentReview)).one()
        review.slack_claimed_at = rt.clock.now()  # another replica is posting it right now
        review_id = review.id

    assert review_posting.post_open(rt, chat, "C0FIN") == []
    assert slack_api.calls("chat.postMessage") == []

    with rt.writing() as session:  # ... and died doing it
        review = session.get(PaymentReview, review_id)
        assert review is not None
        review.slack_claimed_at = rt.clock.now() - timedelta(minutes=11)
    assert review_posting.post_open(rt, chat, "C0FIN") == [review_id]
    assert review_posting.post_open(rt, chat, "C0FIN") == []  # posted once


def test_a_review_slack_refused_is_given_back_at_once(
    ledger_runtime: Runtime, tmp_path: Path, slack_api: Any
) -> None:
    rt = ledger_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    bank = _bank(tmp_path / "b.csv", [["2026-03-14", "800.00", "USD", "March", "Harbor Dental"]])
    with rt.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "fatal_error")
    assert review_posting.post_open(rt, chat, "C0FIN") == []
    with rt.sessions() as session:
        review = session.scalars(select(PaymentReview)).one()
        assert review.slack_claimed_at is None and review.slack_ts is None
    assert review_posting.post_open(rt, chat, "C0FIN") == [review.id]
