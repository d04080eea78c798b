"""An accounting source names each invoice by its own id: an invoice renumbered or moved to another
customer there is the same invoice in the ledger, changed, never a second copy left open."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Event, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.base.ledger import CustomerRecord, InvoiceRecord, LedgerBatch
from tests.bot.ledger.test_sync import _connect, _rt, qb  # noqa: F401 (qb is a fixture)
from tests.support.fake_quickbooks import FakeQuickBooks, invoice, meta


@pytest.mark.parametrize(
    ("customer_id", "number", "kind", "history"),
    [
        ("1", "1037-A", "invoice.renumbered", "1037 renumbered 1037-A (quickbooks)"),
        ("2", "1037", "invoice.moved", "1037 moved here from Amy's Bird Sanctuary (quickbooks)"),
    ],
)
def test_an_invoice_renumbered_or_moved_in_quickbooks_is_changed_and_its_payment_closes_it(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
    customer_id: str,
    number: str,
    kind: str,
    history: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:  # today's plan writes to Amy about 1037
        with rt.writing() as session:
            rules = PlanRules.from_settings(rt.settings)
            run_plan(session, rules, date(2026, 3, 16), rt.clock.now(), False)
    finally:
        rt.close()
    changed = "2026-03-16T07:30:00-07:00"
    qb.invoices[0] = invoice(
        "130", customer_id, number, 362.07, 362.07, due="2026-03-09", updated=changed
    )
    synced = cli("sync")
    assert synced.code == 0, synced.stderr
    assert "quickbooks: 0 new invoice(s), 1 changed" in synced.stdout
    assert "1 waiting reminder(s) cancelled" in synced.stdout
    qb.invoices[0] = {**qb.invoices[0], "Balance": 0, "MetaData": meta("2026-03-16T07:40:00-07:00")}
    assert cli("sync").code == 0
    status = cli("status", customer_id)
    assert status.code == 0, status.stderr
    assert history in " ".join(status.stdout.split())  # the console wraps long lines
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            rows = session.execute(
                select(Invoice.number, Customer.external_id, Invoice.status)
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(Invoice.external_id == "130")
            ).all()
            amy = session.scalars(
                select(Reminder).join(Customer).where(Customer.external_id == "1")
            )
            assert [(r.state, r.cancel_reason) for r in amy] == [("cancelled", "superseded")]
            said = session.execute(
                select(Event.payload, Customer.external_id)
                .join(Customer, Customer.id == Event.customer_id)
                .where(Event.kind == kind)
            ).all()
        assert rows == [(number, customer_id, "paid")]
        assert len(said) == 1
        payload, event_customer = said[0]
        assert event_customer == customer_id
        assert payload["number_before"] == "1037" and payload["number_after"] == number
    finally:
        rt.close()


def _book(*invoices: tuple[str, str, str]) -> LedgerBatch:
    """A QuickBooks batch of one customer's invoices, each (QuickBooks Id, number, balance)."""
    records = [
        InvoiceRecord(
            "58",
            number,
            date(2026, 1, 1),
            date(2026, 3, 9),
            "USD",
            Decimal("400.00"),
            Decimal(balance),
            external_id=external_id,
        )
        for external_id, number, balance in invoices
    ]
    customer = CustomerRecord(external_id="58", name="Ridgeline Roofing")
    return LedgerBatch("quickbooks", "QuickBooks", customers={"58": customer}, invoices=records)


def _stored(runtime: Runtime) -> list[tuple[str, str, Decimal]]:
    with runtime.sessions() as session:
        rows = session.execute(select(Invoice.external_id, Invoice.number, Invoice.balance))
        return sorted((external_id, number, balance) for external_id, number, balance in rows)


def test_numbers_swapped_or_given_up_to_a_new_invoice_follow_each_invoice_by_its_id(
    runtime: Runtime,
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, _book(("130", "1037", "400.00"), ("131", "1038", "100.00")), now)
    # 1037 and 1038 swap numbers
    with runtime.writing() as session:
        apply_batch(session, _book(("130", "1038", "400.00"), ("131", "1037", "100.00")), now)
    assert _stored(runtime) == [
        ("130", "1038", Decimal("400.00")),
        ("131", "1037", Decimal("100.00")),
    ]
    # 1038 becomes 1038-A, and a new invoice takes 1038
    with runtime.writing() as session:
        apply_batch(session, _book(("140", "1038", "250.00"), ("130", "1038-A", "400.00")), now)
    assert _stored(runtime) == [
        ("130", "1038-A", Decimal("400.00")),
        ("131", "1037", Decimal("100.00")),
        ("140", "1038", Decimal("250.00")),
    ]


def test_an_invoice_given_the_number_of_one_deleted_is_still_itself_and_its_payment_closes_it(
    runtime: Runtime,
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, _book(("130", "1037", "400.00"), ("132", "1039", "400.00")), now)
    # 1037 (Id 130) was a mistake: deleted, and 1039 (Id 132) takes its number
    with runtime.writing() as session:
        batch = _book(("132", "1037", "400.00"))
        batch.deleted_invoices = ["130"]
        summary = apply_batch(session, batch, now)
    assert summary.records_skipped == 0
    with runtime.writing() as session:
        apply_batch(session, _book(("132", "1037", "0.00")), now)
    with runtime.sessions() as session:
        rows = session.execute(select(Invoice.external_id, Invoice.number, Invoice.status))
        stored = sorted(tuple(row) for row in rows)
    assert stored == [("130", "1037 (deleted, id 130)", "void"), ("132", "1037", "paid")]


def test_an_invoice_given_a_number_another_still_holds_is_skipped_and_neither_is_changed(
    runtime: Runtime,
) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, _book(("130", "1037", "400.00"), ("132", "1039", "100.00")), now)
    # QuickBooks allows two invoices one number: 1039 becomes a second 1037, then a new one a third
    said = []
    for record in (("132", "1037", "100.00"), ("150", "1037", "250.00")):
        with runtime.writing() as session:
            batch = _book(record)
            summary = apply_batch(session, batch, now)
        assert summary.records_skipped == 1
        said += [problem.message for problem in batch.problems]
    assert (
        said
        == [
            "invoice 1037 of customer 58, has the number of invoice id 130 of QuickBooks, stored "
            "in the ledger; the ledger holds one invoice per number and customer, so it is not "
            "stored: give one of the two another number in QuickBooks"
        ]
        * 2
    )
    assert _stored(runtime) == [
        ("130", "1037", Decimal("400.00")),
        ("132", "1039", Decimal("100.00")),
    ]
