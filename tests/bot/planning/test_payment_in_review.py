"""A customer whose bank payment waits for a person to place it is not chased meanwhile: the plan
holds them, saying why, until the review is decided."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from bot.core.models import Invoice, PaymentReview
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


def test_a_payer_whose_review_offers_no_candidate_is_held_by_its_name(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Acme's payment names only a voided invoice of its own, so its review offers nobody: the
    payer's name ("ACME, INC." as the bank writes it) still holds Acme, and no one else."""
    rows = [
        row(customer_id="C1", customer_name="Acme Inc", invoice_number="A-76", amount="90.00",
            balance="90.00", due_date="2026-02-01"),
        row(customer_id="C1", customer_name="Acme Inc", invoice_number="A-77", amount="250.00",
            balance="250.00", due_date="2026-02-01"),
        row(customer_id="C2", customer_name="Bolt LLC", invoice_number="B-1", amount="80.00",
            balance="80.00", due_date="2026-02-01"),
    ]  # fmt: skip
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
        session.execute(update(Invoice).where(Invoice.number == "A-76").values(status="void"))
    bank = tmp_path / "b.csv"
    bank.write_text(
        'date,amount,currency,reference,payer\n2026-03-10,250.00,USD,A-76,"ACME, INC."\n'
    )
    with runtime.writing() as session:
        summary = bank_import.import_payments(
            session, read_payments(bank), "b.csv", runtime.clock.now()
        )
    assert summary.to_review == 1
    with runtime.sessions() as session:
        [candidates] = session.scalars(select(PaymentReview.candidates)).all()
    assert all(c.get("customer_id") is None for c in candidates)

    waiting = _plan(runtime)

    assert [i.customer.external_id for i in waiting.plan.items] == ["C2"]
    [held] = [h for h in waiting.plan.held if h.customer.external_id == "C1"]
    assert held.reason == "payment_in_review"
