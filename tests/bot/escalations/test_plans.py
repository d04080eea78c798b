"""Payment plans in the core: one running plan per customer (the database refuses a second even
past the check), money counted against the instalments in date order, and Reopen refused while
another escalation of the customer is open."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.core.errors import UserError
from bot.core.models import Customer, Invoice, PaymentPlan
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import row, write

INSTALMENTS = [(date(2026, 3, 20), Decimal("500")), (date(2026, 4, 20), Decimal("700"))]


@pytest.fixture
def customer_id(runtime: Runtime, tmp_path: Path) -> int:
    rows = [row(invoice_number="INV-7", due_date="2026-03-01")]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
        return int(session.scalars(select(Customer.id)).one())


def test_a_second_running_plan_is_refused_by_the_check_and_by_the_database(
    runtime: Runtime, customer_id: int
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        plans.record(session, escalation.id, "U0A", plans.ACCOUNT, INSTALMENTS, now)
    with runtime.writing() as session:
        again, _ = service.open_or_add(session, customer_id, "replied", now)
        with pytest.raises(UserError, match="already has a payment plan running"):
            plans.record(session, again.id, "U0A", plans.ACCOUNT, INSTALMENTS, now)
    with pytest.raises(IntegrityError), runtime.writing() as session:
        session.add(
            PaymentPlan(
                customer_id=customer_id,
                invoice_ids=[],
                currency="USD",
                total=Decimal("1"),
                state="active",
                created_by="U0A",
                created_at=now,
            )
        )
        session.flush()


def test_money_counts_against_the_instalments_in_date_order(
    runtime: Runtime, customer_id: int
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        plans.record(session, escalation.id, "U0A", plans.ACCOUNT, INSTALMENTS, now)
        session.scalars(select(Invoice)).one().balance = Decimal("600")  # 600 paid
    with runtime.sessions() as session:
        progress = plans.progress(session, customer_id)
    assert progress is not None
    assert [(s.state, s.owed) for s in progress.steps] == [
        ("paid", Decimal("0")),
        ("due", Decimal("600")),
    ]
    assert progress.summary() == (
        "Payment plan (active): 1 of 2 instalments paid ($600.00 of $1,200.00), "
        "next $600.00 on 2026-04-20"
    )


def test_reopen_is_refused_while_another_escalation_of_the_customer_is_open(
    runtime: Runtime, customer_id: int
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        first, _ = service.open_or_add(session, customer_id, "replied", now)
        service.resolve(session, first.id, "U0A", "Paid", now)
        service.open_or_add(session, customer_id, "send_failed", now)
        with pytest.raises(UserError, match="already has an open escalation"):
            service.reopen(session, first.id, "U0A", now)
    with runtime.writing() as session:
        second = service.open_for(session, customer_id)
        assert second is not None
        with pytest.raises(UserError, match="not resolved"):
            service.reopen(session, second.id, "U0A", now)
