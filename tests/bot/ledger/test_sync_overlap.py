"""Two syncs of one source at once: the second is refused while the first reads and writes, so
what the first read (perhaps older) never overwrites what the second would have written."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Event, Invoice
from bot.ledger.source_tokens import DatabaseTokenStore
from bot.ledger.sync import sync_source
from integrations.base.ledger import LedgerBatch
from integrations.wiring import ledger_source_opener
from tests.bot.ledger import test_sync
from tests.bot.ledger.test_sync import _connect, _rt
from tests.support.fake_quickbooks import REALM, FakeQuickBooks, invoice

qb = test_sync.qb  # the QuickBooks fake with Amy's 1037 and Bill's 1038


def test_a_sync_run_while_another_reads_is_refused_and_a_paid_invoice_is_never_reopened(
    cli: Any, monkeypatch: pytest.MonkeyPatch, qb: FakeQuickBooks, database_url: str
) -> None:
    assert _connect(cli, monkeypatch, qb).code == 0
    assert cli("sync").code == 0
    # someone notes a call on 1038: the scheduler's next sync will read it, still owing 85
    qb.invoices[1] = invoice(
        "131", "2", "1038", 85.0, 85.0, due="2026-03-09", updated="2026-03-16T07:30:00-07:00"
    )
    rt = _rt(database_url)
    meanwhile: dict[str, Any] = {}
    try:
        opener = ledger_source_opener(rt.settings)
        with opener("quickbooks", REALM, DatabaseTokenStore(rt), rt.clock.now) as quickbooks:

            class ReadsSlowly:
                """QuickBooks, read by the scheduler's sync while Bill pays and someone runs
                `arbot sync` before that read is written to the ledger."""

                name = "quickbooks"

                def fetch_since(self, cursor: str | None) -> LedgerBatch:
                    batch = quickbooks.fetch_since(cursor)
                    qb.invoices[1] = invoice(
                        "131", "2", "1038", 85.0, 0.0, due="2026-03-09",
                        updated="2026-03-16T07:35:00-07:00",
                    )  # fmt: skip
                    meanwhile["sync"] = cli("sync")
                    return batch

                def add_note(self, external_id: str, note: str) -> None:
                    quickbooks.add_note(external_id, note)

            sync_source(rt, ReadsSlowly())

        refused = meanwhile["sync"]
        assert refused.code == 1
        assert "another sync of quickbooks is running" in refused.stderr
        with rt.sessions() as session:
            kinds = list(session.scalars(select(Event.kind).where(Event.kind.like("invoice.%"))))
        assert "invoice.reopened" not in kinds

        again = cli("sync")  # once the first has ended, the payment comes in
        assert again.code == 0, again.stderr
        with rt.sessions() as session:
            bill = session.scalars(select(Invoice).where(Invoice.number == "1038")).one()
            kinds = list(session.scalars(select(Event.kind).where(Event.kind.like("invoice.%"))))
        assert (bill.status, bill.balance) == ("paid", Decimal("0"))
        assert kinds.count("invoice.paid") == 1 and "invoice.reopened" not in kinds
    finally:
        rt.close()
