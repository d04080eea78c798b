"""A customer whose bank payment waits for a person to place it is not chased meanwhile: the plan
holds them, saying why, until the review is decided."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.core.models import PaymentReview
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from bot.planning.planner import PlanRules
from bot.planning.store import PlanRun, run_plan
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments
from tests.support.ledger_files import row, write


def _plan(rt: Runtime) -> PlanRun:
    with rt.writing() as session:
        return run_plan(
            session, PlanRules.from_settings(rt.settings), rt.today(), rt.clock.now(), True
        )


def test_a_customer_with_a_payment_waiting_for_review_is_held_until_it_is_decided(
    runtime: Runtime, tmp_path: Path
) -> None:
    acme = {"customer_id": "C1", "customer_name": "Acme Inc", "amount": "100.00"}
    rows = [
        row(invoice_number="INV-1001", balance="100.00", due_date="2026-02-01", **acme),
        row(invoice_number="INV-1002", balance="100.00", due_date="2026-02-05", **acme),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    before = _plan(runtime)
    assert [i.customer.external_id for i in before.plan.items] == ["C1"]
    bank = tmp_path / "b.csv"  # 100 from Acme, who owes two invoices of 100: a person picks
    bank.write_text("date,amount,currency,reference,payer\n2026-03-10,100.00,USD,,Acme Inc\n")
    with runtime.writing() as session:
        bank_import.import_payments(session, read_payments(bank), "b.csv", runtime.clock.now())

    waiting = _plan(runtime)

    assert waiting.plan.items == []
    [held] = [h for h in waiting.plan.held if h.customer.external_id == "C1"]
    assert held.reason == "payment_in_review"
    assert sorted(held.invoices) == ["INV-1001", "INV-1002"]
    with runtime.writing() as session:
        review_id = session.scalars(select(PaymentReview.id)).one()
        bank_import.decide_review(session, review_id, None, "U0APPROVER", runtime.clock.now())
    decided = _plan(runtime)
    assert [i.customer.external_id for i in decided.plan.items] == ["C1"]
