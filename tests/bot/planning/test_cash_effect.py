"""Each tier's cards are stored, and so posted, in the order of their expected cash effect: the
balance a touch today can bring forward (what would otherwise not be paid within two weeks)."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.forecasting.model import PaymentRecord, fit
from bot.planning.cash_effect import expected_effect
from bot.planning.facts import CustomerFacts, InvoiceFacts
from bot.planning.planner import DueInvoice, PlanItem
from playbooks.model import Step
from tests.support.ledger_files import row, write

# Days late of six paid invoices, and the balance now 7 days late.
HABITS = {
    "C-PROMPT": ((5, 8, 10, 12, 15, 40), "1000.00"),
    "C-SLOW": ((50, 55, 60, 62, 65, 70), "1000.00"),
    "C-BIG": ((5, 8, 10, 12, 15, 40), "4000.00"),
}


def _ledger_with_habits(tmp_path: Path, cli: Any) -> None:
    rows, payments = [], []
    for n, (customer, (habit, balance)) in enumerate(HABITS.items()):
        email = f"ap@{customer.lower()}.example"
        common = {"customer_id": customer, "customer_name": customer.title(), "email": email}
        for k, late in enumerate(habit):
            due = date(2025, 3, 1) + timedelta(days=30 * k)
            number = f"{customer}-{k}"
            amount = f"{100 * (n + 1) + k}.00"
            rows.append(
                row(
                    **common,
                    invoice_number=number,
                    amount=amount,
                    balance=amount,
                    issue_date=(due - timedelta(days=30)).isoformat(),
                    due_date=due.isoformat(),
                )
            )
            paid = (due + timedelta(days=late)).isoformat()
            payments.append([paid, amount, "USD", f"Payment {number}", customer])
        rows.append(
            row(
                **common,
                invoice_number=f"{customer}-OPEN",
                amount=balance,
                balance=balance,
                issue_date="2026-02-07",
                due_date="2026-03-09",
            )  # 7 days late on 2026-03-16
        )
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0
    bank = tmp_path / "bank.csv"
    with bank.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "currency", "reference", "payer"])
        writer.writerows(payments)
    assert cli("import-payments", str(bank)).code == 0


def test_a_tiers_cards_go_by_expected_cash_effect(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    _ledger_with_habits(tmp_path, cli)

    result = cli("plan")

    assert result.code == 0, result.stderr
    with runtime.sessions() as session:
        order = session.scalars(
            select(Customer.external_id)
            .join(Reminder, Reminder.customer_id == Customer.id)
            .where(Reminder.plan_date == date(2026, 3, 16), Reminder.action == "remind")
            .order_by(Reminder.id)
        ).all()
    # Without a touch about a third of a prompt payer's balance would wait past two weeks (one
    # payment in six came 40 days late), all of the slow payer's: 4,000 x 1/3, then 1,000 x 1,
    # then 1,000 x 1/3. (The plan's own order is the customers': PROMPT, SLOW, BIG.)
    assert order == ["C-BIG", "C-SLOW", "C-PROMPT"]


def _item(customer_id: int, balance: str, currency: str = "USD") -> PlanItem:
    customer = CustomerFacts(
        customer_id, f"C-{customer_id}", "x", "standard", [], False, None, None, None
    )
    invoice = InvoiceFacts(
        customer_id,
        "I",
        date(2026, 1, 1),
        date(2026, 3, 9),
        currency,
        Decimal(balance),
        Decimal(balance),
        False,
        None,
        False,
        None,
    )
    step = Step.model_validate(
        {
            "key": "polite",
            "offset_days": 7,
            "channels": ["email"],
            "template": "t",
            "tone": "polite",
        }
    )
    return PlanItem(customer, "remind", step, "standard", [DueInvoice(invoice, step, 7)])


def test_a_customer_who_pays_within_days_anyway_gains_little_from_a_touch() -> None:
    records = [
        PaymentRecord(
            1,
            date(2025, 1, 1) + timedelta(days=30 * n),
            date(2025, 1, 1) + timedelta(days=30 * n + 9),
        )
        for n in range(12)
    ] + [
        PaymentRecord(
            2,
            date(2025, 1, 1) + timedelta(days=30 * n),
            date(2025, 1, 1) + timedelta(days=30 * n + 70),
        )
        for n in range(12)
    ]
    model = fit(records, date(2026, 3, 16))

    prompt = expected_effect(_item(1, "1000"), model)
    slow = expected_effect(_item(2, "1000"), model)

    assert prompt[0] == slow[0] == "USD"
    assert prompt[1] < Decimal("300") < Decimal("900") < slow[1]
