"""A ledger re-import that changes an invoice: the waiting reminders that state what changed are
cancelled, a payment arbot recorded is kept without losing the ledger's new total, and each change
is in the customer's history."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Event, Invoice, Reminder, ReminderInvoice
from bot.core.runtime import Runtime
from bot.escalations.thread import history_of
from bot.ledger.upsert import apply_batch
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.base.ledger import ContactRecord, CustomerRecord, InvoiceRecord, LedgerBatch
from tests.support.ledger_files import a_week_late, row, write


def _import(cli: Any, path: Path, rows: list[dict[str, str]]) -> None:
    result = cli("import-csv", str(write(path, rows)))
    assert result.code == 0, result.stderr


def _invoice_events(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.rollback()  # a new read transaction sees the latest import
    return [
        (kind, payload)
        for kind, payload in session.execute(
            select(Event.kind, Event.payload).where(Event.kind.like("invoice.%")).order_by(Event.id)
        )
    ]


def _pay_by_bank(cli: Any, path: Path, amount: str) -> None:
    path.write_text(
        "date,amount,currency,reference,payer\n"
        f"2026-03-14,{amount},USD,Payment INV-1 thanks,RIDGELINE ROOFING\n",
        encoding="utf-8",
    )
    result = cli("import-payments", str(path))
    assert result.code == 0, result.stderr


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"due_date": "2026-04-15"}, "due_date_changed"),
        ({"amount": "1500.00"}, "total_changed"),  # a payment of 300 booked with it
        ({"balance": "900.00"}, "superseded"),
    ],
)
def test_a_changed_due_date_or_total_cancels_the_approved_reminder_that_states_the_old_one(
    cli: Any, runtime: Runtime, tmp_path: Path, change: dict[str, str], reason: str
) -> None:
    _import(cli, tmp_path / "day1.csv", a_week_late(1))
    assert cli("plan").code == 0
    with runtime.writing() as session:
        rules = StaleRules.from_settings(runtime.settings)
        decision = approvals.approve(session, 1, "U0A", runtime.clock.now(), rules=rules)
    assert decision.state == "approved"

    _import(cli, tmp_path / "day2.csv", [{**a_week_late(1)[0], **change}])

    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None
        assert (reminder.state, reminder.cancel_reason) == ("cancelled", reason)
        cancelled = session.scalars(
            select(Event.payload).where(Event.kind == "reminder.cancelled")
        ).all()
    assert cancelled == [{"reason": reason}]


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        ("invoice.due_date_changed", {"due_date": date(2026, 4, 15)}, "due_date_changed"),
        ("invoice.total_changed", {"total": Decimal(1500)}, "total_changed"),
    ],
)
def test_approving_a_reminder_planned_before_its_due_date_or_total_changed_cancels_it(
    cli: Any,
    runtime: Runtime,
    tmp_path: Path,
    kind: str,
    change: dict[str, Any],
    reason: str,
) -> None:
    _import(cli, tmp_path / "day1.csv", a_week_late(1))
    assert cli("plan").code == 0
    # changed after the plan was read, by an import that did not see the plan's reminders yet
    later = runtime.clock.now() + timedelta(minutes=5)
    with runtime.writing() as session:
        session.execute(update(Invoice).values(**change))
        audit.record(session, later, kind, customer_id=1, invoice_id=1)

    with runtime.writing() as session:
        rules = StaleRules.from_settings(runtime.settings)
        decision = approvals.approve(session, 1, "U0A", later, rules=rules)

    assert (decision.changed, decision.state) == (False, "cancelled")
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None and reminder.cancel_reason == reason


@pytest.mark.parametrize(
    ("ledger", "stored"),
    [
        # the ledger caught up with the bank's 400 and raised the total by 300
        (("1500.00", "1100.00"), ("1500", "1100", "open")),
        # the total raised, the bank's payment not yet in the ledger: it is not undone
        (("1500.00", "1500.00"), ("1500", "1100", "open")),
        # the ledger has not caught up and changed nothing else: the stored balance stays
        (("1200.00", "1200.00"), ("1200", "800", "open")),
    ],
)
def test_a_later_total_from_the_ledger_is_kept_on_an_invoice_the_bank_paid_in_part(
    cli: Any,
    session: Session,
    tmp_path: Path,
    ledger: tuple[str, str],
    stored: tuple[str, str, str],
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])  # 1200.00 open
    _pay_by_bank(cli, tmp_path / "bank.csv", "400.00")

    amount, balance = ledger
    _import(cli, tmp_path / "day2.csv", [row(amount=amount, balance=balance)])

    session.rollback()
    invoice = session.scalars(select(Invoice)).one()
    total, owed, status = stored
    assert (invoice.total, invoice.balance, invoice.status) == (
        Decimal(total),
        Decimal(owed),
        status,
    )


def test_a_raised_total_reopens_an_invoice_the_bank_paid_before_the_ledger_knew(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])
    _pay_by_bank(cli, tmp_path / "bank.csv", "1200.00")

    _import(cli, tmp_path / "day2.csv", [row(amount="1500.00", balance="1500.00")])

    session.rollback()
    invoice = session.scalars(select(Invoice)).one()
    assert (invoice.total, invoice.balance, invoice.status) == (
        Decimal(1500),
        Decimal(300),
        "open",
    )
    assert [kind for kind, _payload in _invoice_events(session)][-2:] == [
        "invoice.reopened",
        "invoice.total_changed",
    ]


def test_a_due_date_moved_with_the_balance_is_recorded_after_it(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])
    _import(cli, tmp_path / "day2.csv", [row(balance="900.00", due_date="2026-03-31")])

    assert _invoice_events(session) == [
        (
            "invoice.balance_changed",
            {
                "number": "INV-1",
                "currency": "USD",
                "balance_before": "1200.0000",
                "balance_after": "900.00",
            },
        ),
        (
            "invoice.due_date_changed",
            {"number": "INV-1", "due_before": "2026-02-14", "due_after": "2026-03-31"},
        ),
    ]


def test_a_change_of_the_total_or_the_issue_date_alone_is_recorded(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    _import(cli, tmp_path / "day1.csv", [row()])
    _import(cli, tmp_path / "day2.csv", [row(amount="1500.00")])
    _import(cli, tmp_path / "day3.csv", [row(amount="1500.00", issue_date="2026-01-10")])

    assert _invoice_events(session) == [
        (
            "invoice.total_changed",
            {
                "number": "INV-1",
                "currency": "USD",
                "total_before": "1200.0000",
                "total_after": "1500.00",
            },
        ),
        (
            "invoice.issue_date_changed",
            {"number": "INV-1", "issue_before": "2026-01-15", "issue_after": "2026-01-10"},
        ),
    ]
    history = cli("status", "C-1").stdout
    assert "INV-1 total 1200.00 → 1500.00 USD" in history
    assert "INV-1 issue date 2026-01-15 → 2026-01-10" in history


def _quickbooks(*invoices: tuple[str, str, str | None]) -> LedgerBatch:
    """A QuickBooks sync of one customer's invoices, each (number, balance, status)."""
    contact = ContactRecord("Maria Garcia", "ap@ridgeline.example", None, None, None)
    customer = CustomerRecord(
        "58", "Ridgeline Roofing", timezone="America/Chicago", contacts=[contact]
    )
    records = [
        InvoiceRecord(
            "58",
            number,
            date(2026, 1, 1),
            date(2026, 3, 9),  # a week late on 2026-03-16
            "USD",
            Decimal("400.00"),
            Decimal(balance),
            status,
        )
        for number, balance, status in invoices
    ]
    return LedgerBatch(
        "quickbooks", "QuickBooks company 9130", customers={"58": customer}, invoices=records
    )


@pytest.mark.parametrize(
    ("closed", "reason", "why"),
    [
        ([("1037", "0.00", "void")], "voided", "voided in the ledger"),
        # nothing is left to collect, and some of it was paid
        ([("1037", "0.00", "void"), ("1038", "0.00", None)], "paid", "paid"),
    ],
)
def test_a_reminder_whose_invoices_the_ledger_voided_is_cancelled_as_voided_or_paid_when_one_was(
    cli: Any,
    runtime: Runtime,
    closed: list[tuple[str, str, str | None]],
    reason: str,
    why: str,
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, _quickbooks(*[(n, "400.00", None) for n, _b, _s in closed]), now)
    assert cli("plan").code == 0
    with runtime.sessions() as session:
        covered = session.scalars(select(ReminderInvoice.invoice_id)).all()
    assert len(covered) == len(closed)  # one reminder for them all

    with runtime.writing() as session:
        apply_batch(session, _quickbooks(*closed), now)

    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        assert (reminder.state, reminder.cancel_reason) == ("cancelled", reason)
        history = [line.text for line in history_of(session, reminder.customer_id, "UTC")]
    assert history[-1] == f"cancelled reminder, 7 days late by email ({why})"
