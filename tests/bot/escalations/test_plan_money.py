"""Payment plans and the money behind them: what an instalment's reminder asks for, on its card
as in its message, once payments or the plan's invoices change. Planned and posted through the
real flow to the recording Slack fake."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Event, Invoice, PaymentPlan, Reminder
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from bot.escalations.sweeps import sweep
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

REMINDED = date(2026, 3, 17)  # three days before the first instalment
INSTALMENTS = [(date(2026, 3, 20), Decimal("400.00")), (date(2026, 4, 20), Decimal("800.00"))]


def _ledger(rt: Runtime, clock: FixedClock, path: Path, rows: list[dict[str, str]]) -> None:
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(path, rows)), clock.now())


def _plan(rt: Runtime, clock: FixedClock) -> int:
    with rt.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", clock.now())
        plans.record(session, escalation.id, "U0APPROVER", plans.ACCOUNT, INSTALMENTS, clock.now())
        service.resolve(session, escalation.id, "U0APPROVER", "Plan agreed", clock.now())
        return customer_id


def test_a_card_asks_for_what_the_instalment_still_lacks_as_its_message_does(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    first = [row(invoice_number="INV-7", due_date="2026-03-01", balance="1200.00")]
    _ledger(rt, clock, tmp_path / "a.csv", first)
    _plan(rt, clock)
    paid = [row(invoice_number="INV-7", due_date="2026-03-01", balance="1050.00")]
    _ledger(rt, clock, tmp_path / "b.csv", paid)  # $150 of the first $400 came in
    clock.set(datetime(2026, 3, 17, 14, 0, tzinfo=UTC))
    plan_day(rt, REMINDED, links=None, slack=SlackChat(web_client("xoxb-test", slack_api.url)))
    with rt.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    assert "$250.00" in (reminder.subject or "")
    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
    assert "*Asks for*\n$250.00" in fields, fields


def test_an_instalment_reminder_asks_for_no_money_of_a_disputed_invoice(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    rows = [
        row(invoice_number="INV-7", due_date="2026-03-01", amount="300.00", balance="300.00"),
        row(invoice_number="INV-8", due_date="2026-03-01", amount="900.00", balance="900.00"),
    ]
    _ledger(rt, clock, tmp_path / "a.csv", rows)
    customer_id = _plan(rt, clock)  # $400 on March 20, $800 on April 20
    with rt.writing() as session:  # INV-8 disputed while the plan runs: only INV-7 is asked for
        service.dispute(session, customer_id, "wrong roof", clock.now(), numbers=["INV-8"])
    clock.set(datetime(2026, 3, 17, 14, 0, tzinfo=UTC))
    plan_day(rt, REMINDED, links=None, slack=SlackChat(web_client("xoxb-test", slack_api.url)))
    with rt.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    words = f"{reminder.subject}\n{reminder.body_text}"
    assert "$300.00" in (reminder.subject or "") and "$400.00" not in words
    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
    assert "*Asks for*\n$300.00" in fields


def _void(rt: Runtime, clock: FixedClock, path: Path, rows: list[dict[str, str]]) -> None:
    """The ledger voids INV-8 (as QuickBooks does: nothing left on it)."""
    batch = read_ledger_csv(write(path, rows))
    batch.invoices[:] = [
        r._replace(status="void", balance=Decimal(0)) if r.number == "INV-8" else r
        for r in batch.invoices
    ]
    with rt.writing() as session:
        apply_batch(session, batch, clock.now())


def test_an_invoice_voided_under_a_plan_is_not_counted_as_instalments_paid(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    rows = [
        row(invoice_number="INV-7", due_date="2026-03-01", amount="400.00", balance="400.00"),
        row(invoice_number="INV-8", due_date="2026-03-01", amount="800.00", balance="800.00"),
    ]
    _ledger(runtime, clock, tmp_path / "a.csv", rows)
    customer_id = _plan(runtime, clock)  # $400 on March 20, $800 on April 20
    _void(runtime, clock, tmp_path / "b.csv", rows)  # nothing was paid
    sweep(runtime, None)
    with runtime.sessions() as session:
        plan = session.scalars(select(PaymentPlan)).one()
        kinds = list(session.scalars(select(Event.kind).order_by(Event.id)))
        escalation = service.open_for(session, customer_id)
        held = list(session.scalars(select(Invoice.number).where(Invoice.payment_plan.is_(True))))
        progress = plans.progress(session, customer_id)
    assert progress is not None and progress.summary() == (
        "Payment plan (cancelled): 0 of 2 instalments paid ($0.00 of $1,200.00)"
    )
    assert "instalment.paid" not in kinds and "plan.completed" not in kinds
    assert plan.state == "cancelled" and kinds[-1] != "plan.recorded"
    assert escalation is not None and "INV-8" in (escalation.detail or "")  # a person agrees
    assert held == []  # what is left to pay on INV-7


def test_a_plan_whose_every_invoice_is_voided_does_not_complete_as_paid(
    runtime: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    rows = [row(invoice_number="INV-8", due_date="2026-03-01", balance="1200.00")]
    _ledger(runtime, clock, tmp_path / "a.csv", rows)
    _plan(runtime, clock)
    _void(runtime, clock, tmp_path / "b.csv", rows)
    sweep(runtime, None)
    with runtime.sessions() as session:
        plan = session.scalars(select(PaymentPlan)).one()
        kinds = list(session.scalars(select(Event.kind)))
    assert plan.state == "cancelled"
    assert "instalment.paid" not in kinds and "plan.completed" not in kinds
