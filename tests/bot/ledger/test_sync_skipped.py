"""A record a sync skips is fetched again by the next sync, so fixing it in the source, as the sync's
message asks, brings it and everything skipped with it into the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Event, Invoice, SyncState
from bot.core.runtime import Runtime
from bot.ledger.sync import sync_source
from tests.bot.ledger.test_sync import _connect, _rt, qb  # noqa: F401 (qb is a fixture)
from tests.integrations.test_xero import BEFORE, Connected, xero  # noqa: F401 (a fixture)
from tests.support.fake_quickbooks import FakeQuickBooks, customer, deleted, invoice
from tests.support.fake_xero import FakeXero, contact
from tests.support.fake_xero import invoice as xero_invoice


def test_a_customer_fixed_in_quickbooks_brings_back_the_invoices_skipped_with_it(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            state = session.get(SyncState, "quickbooks")
            assert state is not None
            first_cursor = state.cursor
    finally:
        rt.close()
    # Bill's name is pasted with a tab; meanwhile Bill pays 1038 and gets a new invoice, 1050
    changed = "2026-03-16T07:10:00-07:00"
    bad = {"value": "2", "name": "Bill's Windsurf\tShop"}
    qb.customers[1] = customer(
        "2", "Bill's Windsurf\tShop", "bill@windsurf.example", updated=changed
    )
    qb.invoices[1] = invoice("131", "2", "1038", 85.0, 0.0, updated=changed, CustomerRef=bad)
    qb.invoices.append(invoice("140", "2", "1050", 500.0, 500.0, updated=changed, CustomerRef=bad))
    monkeypatch.setattr("tests.support.fake_quickbooks.SERVER_TIME", "2026-03-16T07:20:00-07:00")
    skipped = cli("sync")
    assert skipped.code == 0, skipped.stderr
    said = " ".join(skipped.stderr.split())  # the console wraps long lines
    assert "skipped invoice 140: invoice 1050 of customer 2, is not stored" in said
    assert (
        "quickbooks: 3 record(s) skipped: the next sync fetches each again by its id, so each "
        "is stored once it is fixed there" in said
    )
    # the name is fixed in QuickBooks, as the message asks: only the customer is changed there
    qb.customers[1] = customer(
        "2", "Bill's Windsurf Shop", "bill@windsurf.example", updated="2026-03-16T07:30:00-07:00"
    )
    for record in qb.invoices[1:]:
        record["CustomerRef"] = {"value": "2", "name": "Bill's Windsurf Shop"}
    monkeypatch.setattr("tests.support.fake_quickbooks.SERVER_TIME", "2026-03-16T07:40:00-07:00")
    fixed = cli("sync")
    assert fixed.code == 0, fixed.stderr
    assert "skipped" not in fixed.stderr
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            rows = session.execute(
                select(Invoice.number, Invoice.status, Invoice.balance).order_by(Invoice.number)
            ).all()
            state = session.get(SyncState, "quickbooks")
            assert state is not None
            assert state.cursor is not None and state.cursor > (first_cursor or "")
    finally:
        rt.close()
    assert rows == [
        ("1037", "open", Decimal("362.07")),
        ("1038", "paid", Decimal("0")),
        ("1050", "open", Decimal("500")),
    ]


def test_an_invoice_skipped_for_its_number_is_fetched_again_by_its_id_and_said_once(
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    qb: FakeQuickBooks,  # noqa: F811
    database_url: str,
) -> None:
    # QuickBooks lets two invoices share a number (it only warns): 1037 is Ids 130 and 150
    qb.invoices.append(invoice("150", "1", "1037", 10.0, 10.0, due="2026-03-09"))
    assert _connect(cli, monkeypatch, qb).code == 0
    said = []
    for hour in ("07", "08", "09"):
        monkeypatch.setattr(
            "tests.support.fake_quickbooks.SERVER_TIME", f"2026-03-16T{hour}:20:00-07:00"
        )
        before = len(qb.queries())
        synced = cli("sync")
        assert synced.code == 0, synced.stderr
        said.append(" ".join(synced.stderr.split()))
        fetched = qb.queries()[before:]
    # each sync after the first reads only what changed, and 150 by its id
    assert not any("FROM Invoice ORDERBY" in query for query in fetched)
    assert any("FROM Invoice WHERE Id IN ('150')" in query for query in fetched)
    assert "skipped invoice 150" in said[-1]
    assert "the next sync fetches each again by its id" in said[-1]
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            state = session.get(SyncState, "quickbooks")
            assert state is not None and state.cursor is not None
            problems = session.scalars(select(Event.payload).where(Event.kind == "sync.problem"))
            assert [payload["id"] for payload in problems] == ["150"]  # in the log once
    finally:
        rt.close()
    # 130 is deleted in QuickBooks: 150, unchanged there, takes 1037 at the next sync
    gone = qb.invoices.pop(0)
    qb.deleted_invoices.append(deleted(gone, updated="2026-03-16T09:30:00-07:00"))
    monkeypatch.setattr("tests.support.fake_quickbooks.SERVER_TIME", "2026-03-16T09:40:00-07:00")
    fixed = cli("sync")
    assert fixed.code == 0, fixed.stderr
    assert "skipped" not in fixed.stderr
    rt = _rt(database_url)
    try:
        with rt.sessions() as session:
            rows = session.execute(
                select(
                    Invoice.external_id, Invoice.number, Invoice.status, Invoice.balance
                ).order_by(Invoice.external_id)
            ).all()
    finally:
        rt.close()
    assert rows == [
        ("130", "1037 (deleted, id 130)", "void", Decimal("362.07")),
        ("131", "1038", "open", Decimal("85")),
        ("150", "1037", "open", Decimal("10")),
    ]


def test_a_source_that_cannot_fetch_by_id_keeps_its_cursor_for_a_skip_a_bounded_number_of_syncs(
    xero: FakeXero,  # noqa: F811
    clock: FixedClock,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.ledger.sync.CURSOR_KEPT_AT_MOST", 2)
    xero.contacts = [contact("c-1", "Ridgeway Clinics", "billing@ridgeway.example", updated=BEFORE)]
    xero.invoices = [
        xero_invoice("i-1", "c-1", "INV-0001", 100.0, 100.0, updated=BEFORE),
        xero_invoice("i-2", "c-1", "INV-0002", 10.0, 10.0, due=None, updated=BEFORE),  # skipped
    ]
    source = Connected(xero, clock).source
    asked, skipped, next_time = [], [], []
    for _ in range(4):
        before = len(xero.api_calls("Invoices"))
        result = sync_source(runtime, source)
        asked.append(xero.api_calls("Invoices")[before].headers.get("if-modified-since"))
        skipped.append(result.summary.records_skipped)
        next_time.append(result.skipped_next)
    # the first syncs read everything again; the third moves on, and INV-0002 comes once changed
    assert asked[:3] == [None, None, None] and asked[3] is not None
    assert skipped == [1, 1, 1, 0]
    assert next_time == ["from_cursor", "from_cursor", "cursor_moved", ""]
    with runtime.sessions() as session:
        problems = session.scalars(select(Event.payload).where(Event.kind == "sync.problem"))
        assert [payload["id"] for payload in problems] == ["i-2"]  # in the log once
