"""A ledger with a payment history, made the way a user makes one: a ledger CSV imported, then a
bank file whose references name the invoices (`arbot import-payments`)."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.support.ledger_files import row, write

AS_OF = date(2026, 3, 16)


def history_ledger(tmp_path: Path, cli: Any) -> None:
    """C-1 paid its last 12 invoices 10 days late each; C-2 paid 3 on the due date; C-3 (new) has
    only an open invoice, in EUR. Open: C-1's INV-1-OPEN (due 2026-03-20), C-2's INV-2-OPEN,
    C-3's INV-3-OPEN."""
    rows, payments = [], []
    for n in range(12):
        due = date(2025, 3, 1) + timedelta(days=28 * n)
        number = f"INV-1-{n:02d}"
        amount = f"{1000 + n}.00"
        rows.append(
            row(
                invoice_number=number,
                issue_date=(due - timedelta(days=30)).isoformat(),
                due_date=due.isoformat(),
                amount=amount,
                balance=amount,
            )
        )
        payments.append(
            [
                (due + timedelta(days=10)).isoformat(),
                amount,
                "USD",
                f"Payment {number}",
                "RIDGELINE",
            ]
        )
    for n in range(3):
        due = date(2025, 11, 1) + timedelta(days=30 * n)
        number = f"INV-2-{n:02d}"
        amount = f"{500 + n}.00"
        rows.append(
            row(
                customer_id="C-2",
                customer_name="Harbor Dental LLC",
                email="ap@harbor.example",
                invoice_number=number,
                issue_date=(due - timedelta(days=30)).isoformat(),
                due_date=due.isoformat(),
                amount=amount,
                balance=amount,
            )
        )
        payments.append([due.isoformat(), amount, "USD", f"Payment {number}", "HARBOR"])
    rows.append(
        row(
            invoice_number="INV-1-OPEN",
            issue_date="2026-02-18",
            due_date="2026-03-20",
            amount="2000.00",
            balance="2000.00",
        )
    )
    rows.append(
        row(
            customer_id="C-2",
            customer_name="Harbor Dental LLC",
            email="ap@harbor.example",
            invoice_number="INV-2-OPEN",
            issue_date="2026-02-20",
            due_date="2026-03-22",
            amount="700.00",
            balance="700.00",
        )
    )
    rows.append(
        row(
            customer_id="C-3",
            customer_name="Newfield Clinic",
            email="ap@newfield.example",
            invoice_number="INV-3-OPEN",
            issue_date="2026-03-01",
            due_date="2026-03-31",
            currency="EUR",
            amount="900.00",
            balance="900.00",
        )
    )
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0
    bank = tmp_path / "bank.csv"
    with bank.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency", "reference", "payer"])
        writer.writerows(payments)
    result = cli("import-payments", str(bank))
    assert result.code == 0, result.stderr
