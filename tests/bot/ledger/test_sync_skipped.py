"""A record a sync skips is fetched again by the next sync, so fixing it in the source, as the sync's
message asks, brings it and everything skipped with it into the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Invoice, SyncState
from tests.bot.ledger.test_sync import _connect, _rt, qb  # noqa: F401 (qb is a fixture)
from tests.support.fake_quickbooks import FakeQuickBooks, customer, invoice


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
        "quickbooks: 3 record(s) skipped: the next sync reads the source again from where this "
        "one started, so each is stored once it is fixed there" in said
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
