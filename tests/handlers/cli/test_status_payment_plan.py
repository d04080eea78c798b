"""`arbot status` shows a customer's payment plan: a line in the table, the whole plan in JSON."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Customer
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from tests.support.ledger_files import row, write


def test_status_shows_the_plan_and_each_instalment(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    rows = [row(invoice_number="INV-7", due_date="2026-03-01")]
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    now = runtime.clock.now()
    with runtime.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        plans.record(
            session,
            escalation.id,
            "U0APPROVER",
            plans.ACCOUNT,
            [(date(2026, 3, 20), Decimal("200")), (date(2026, 4, 20), Decimal("1000"))],
            now,
        )

    shown = cli("status", "C-1")
    assert shown.code == 0
    assert "Payment plan (active): 0 of 2 instalments paid" in " ".join(shown.stdout.split())

    doc = json.loads(cli("status", "C-1", "--json").stdout)
    plan = doc["payment_plan"]
    assert plan["state"] == "active" and plan["total"] == "1200.00" and plan["paid"] == "0.00"
    assert [(i["due_on"], i["amount"], i["state"]) for i in plan["instalments"]] == [
        ("2026-03-20", "200.00", "due"),
        ("2026-04-20", "1000.00", "due"),
    ]
