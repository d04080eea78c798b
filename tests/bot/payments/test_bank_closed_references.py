"""A bank payment whose reference names an invoice already paid, voided or written off goes to a
person saying so; it is never applied to the payer's other invoices instead, whether the invoice
was closed by an earlier file, by the ledger, or earlier in the same file."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.core.models import Invoice, PaymentAllocation, PaymentReview
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.payments import bank_import
from integrations.csv_ledger import read_ledger_csv
from integrations.csv_payments import read_payments
from tests.support.ledger_files import row, write


def _bank(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency", "reference", "payer"])
        writer.writerows(rows)
    return path


@pytest.fixture
def acme(runtime: Runtime, tmp_path: Path) -> Runtime:
    """Acme owes INV-1001 (100) and INV-1002 (300)."""
    fields = {"customer_id": "C1", "customer_name": "Acme Inc", "due_date": "2026-02-01"}
    rows = [
        row(invoice_number="INV-1001", amount="100.00", balance="100.00", **fields),
        row(invoice_number="INV-1002", amount="300.00", balance="300.00", **fields),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    return runtime


def _import(rt: Runtime, path: Path) -> bank_import.BankImportSummary:
    with rt.writing() as session:
        return bank_import.import_payments(session, read_payments(path), path.name, rt.clock.now())


def _balances(rt: Runtime) -> dict[str, Decimal]:
    with rt.sessions() as session:
        return dict(session.execute(select(Invoice.number, Invoice.balance)).all())  # type: ignore[arg-type]


def _why(rt: Runtime, review_id: int) -> str:
    with rt.sessions() as session:
        review = session.get(PaymentReview, review_id)
        assert review is not None
        return " ".join(str(c.get("why")) for c in review.candidates)


def test_a_second_file_paying_an_invoice_paid_by_the_first_goes_to_review(
    acme: Runtime, tmp_path: Path
) -> None:
    first = _bank(tmp_path / "p1.csv", [["2026-03-10", "100.00", "USD", "INV-1001", "Acme Inc"]])
    second = _bank(tmp_path / "p2.csv", [["2026-03-12", "100.00", "USD", "INV-1001", "Acme Inc"]])
    assert _import(acme, first).applied == 1

    summary = _import(acme, second)

    assert (summary.applied, summary.to_review) == (0, 1)
    assert _balances(acme)["INV-1002"] == Decimal("300.00")  # not paid in part instead
    why = _why(acme, summary.reviews[0])
    assert "INV-1001" in why and "already paid" in why


@pytest.mark.parametrize(("status", "said"), [("void", "voided"), ("written_off", "written off")])
def test_a_payment_naming_a_closed_invoice_is_not_applied_to_another(
    acme: Runtime, tmp_path: Path, status: str, said: str
) -> None:
    with acme.writing() as session:
        session.execute(update(Invoice).where(Invoice.number == "INV-1002").values(status=status))
    bank = _bank(tmp_path / "v.csv", [["2026-03-10", "50.00", "USD", "INV-1002", "Acme Inc"]])

    summary = _import(acme, bank)

    assert (summary.applied, summary.to_review) == (0, 1)
    assert _balances(acme)["INV-1001"] == Decimal("100.00")
    with acme.sessions() as session:
        assert session.scalars(select(PaymentAllocation)).all() == []
    why = _why(acme, summary.reviews[0])
    assert "INV-1002" in why and said in why


def test_only_the_closed_invoices_a_reference_names_are_read(acme: Runtime, tmp_path: Path) -> None:
    with acme.writing() as session:
        session.execute(
            update(Invoice)
            .where(Invoice.number.in_(["INV-1001", "INV-1002"]))
            .values(status="paid")
        )
        named, statuses = bank_import.closed_invoices_named(session, ["Payment INV-1002"])
        none, _ = bank_import.closed_invoices_named(session, [])
    assert [(i.number, i.balance) for i in named] == [("INV-1002", Decimal(0))]
    assert list(statuses.values()) == ["paid"] and none == []


def test_another_customers_paid_invoice_a_reference_happens_to_name_does_not_hold_a_payment(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Acme pays its 250 quoting its purchase order 4521; Bolt's invoice 4521 was paid long ago."""
    rows = [
        row(customer_id="C1", customer_name="Acme Inc", invoice_number="A-77", amount="250.00",
            balance="250.00", due_date="2026-02-01"),
        row(customer_id="C2", customer_name="Bolt LLC", invoice_number="4521", amount="90.00",
            balance="0.00", due_date="2026-02-10"),
    ]  # fmt: skip
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    acme_pays = _bank(tmp_path / "a.csv", [["2026-03-10", "250.00", "USD", "PO 4521", "Acme Inc"]])

    summary = _import(runtime, acme_pays)

    assert (summary.applied, summary.to_review) == (1, 0)
    assert _balances(runtime)["A-77"] == Decimal("0.00")


def test_bolts_own_paid_invoice_named_again_still_goes_to_review(
    runtime: Runtime, tmp_path: Path
) -> None:
    rows = [
        row(customer_id="C2", customer_name="Bolt LLC", invoice_number="4521", amount="90.00",
            balance="0.00", due_date="2026-02-10"),
        row(customer_id="C2", customer_name="Bolt LLC", invoice_number="4522", amount="90.00",
            balance="90.00", due_date="2026-02-20"),
    ]  # fmt: skip
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    for payer in ("Bolt LLC", ""):
        bank = _bank(tmp_path / "b.csv", [["2026-03-10", "90.00", "USD", "INV 4521", payer]])

        summary = _import(runtime, bank)

        assert (summary.applied, summary.to_review) == (0, 1), payer
        assert "4521, already paid" in _why(runtime, summary.reviews[0])
