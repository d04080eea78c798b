"""An invoice's copy from its connected accounting source, through the same connection sync uses
(the QuickBooks fake, tokens in the database): fetched once and kept, taken from the cache while
the invoice is unchanged, fetched again after a sync changes it; and refused, naming the invoice,
when the source no longer has it or is no longer connected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select

from bot.core.models import Invoice, InvoiceDocument, SourceToken
from bot.core.runtime import Runtime, start
from bot.core.settings import Settings
from bot.ledger.invoice_copies import invoice_copies
from bot.ledger.source_tokens import DatabaseTokenStore
from integrations.base.documents import CopyRefused
from integrations.base.ledger import Tokens
from integrations.wiring import copy_fetchers_for
from scheduler.jobs import sync_connected
from tests.support.fake_quickbooks import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    FakeQuickBooks,
    customer,
    invoice,
)

KEY = "copies-test-secret-key-0123456789"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
LIMIT = 10_000_000


@pytest.fixture
def quickbooks() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    fake.customers = [customer("1", "Amy's Bird Sanctuary", "birds@amy.example")]
    fake.invoices = [invoice("130", "1", "1037", 362.07, 362.07, due="2026-03-09")]
    fake.pdfs["130"] = PDF
    yield fake
    fake.stop()


@pytest.fixture
def connected(settings: Settings, quickbooks: FakeQuickBooks) -> Iterator[Runtime]:
    runtime = start(
        settings.model_copy(
            update={
                "secret_key": SecretStr(KEY),
                "quickbooks_client_id": CLIENT_ID,
                "quickbooks_client_secret": SecretStr(CLIENT_SECRET),
                "quickbooks_api_url": quickbooks.url,
                "quickbooks_token_url": quickbooks.token_url,
            }
        )
    )
    now = runtime.clock.now()
    DatabaseTokenStore(runtime).save(
        "quickbooks", Tokens("qb-access-0", "qb-refresh-0", now + timedelta(hours=1), REALM)
    )
    sync_connected(runtime, None)
    yield runtime
    runtime.close()


def _invoice_id(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalars(select(Invoice.id).where(Invoice.number == "1037")).one()


def test_a_copy_is_fetched_once_and_again_only_after_the_invoice_changed(
    connected: Runtime, quickbooks: FakeQuickBooks
) -> None:
    fetchers = copy_fetchers_for(connected.settings)
    invoice_id = _invoice_id(connected)
    (copy,) = invoice_copies(connected, [invoice_id], fetchers, LIMIT)
    assert (copy.filename, copy.content_type, copy.data) == ("1037.pdf", "application/pdf", PDF)
    invoice_copies(connected, [invoice_id], fetchers, LIMIT)
    assert len(quickbooks.api_calls("/invoice/130/pdf")) == 1  # the second came from the cache

    quickbooks.invoices[0].update(Balance=100.0)  # part paid in QuickBooks: its PDF says so
    quickbooks.invoices[0]["MetaData"]["LastUpdatedTime"] = "2026-03-16T07:30:00-07:00"
    quickbooks.pdfs["130"] = PDF.replace(b"1 0 obj", b"9 0 obj")
    sync_connected(connected, None)
    (again,) = invoice_copies(connected, [invoice_id], fetchers, LIMIT)
    assert again.data == quickbooks.pdfs["130"]
    assert len(quickbooks.api_calls("/invoice/130/pdf")) == 2
    with connected.sessions() as session:
        assert session.scalars(select(InvoiceDocument.origin)).all() == ["quickbooks"]


def test_an_invoice_the_source_lost_or_a_source_no_longer_connected_is_refused(
    connected: Runtime, quickbooks: FakeQuickBooks
) -> None:
    fetchers = copy_fetchers_for(connected.settings)
    invoice_id = _invoice_id(connected)
    quickbooks.pdfs.clear()
    with pytest.raises(CopyRefused, match="QuickBooks has no copy of invoice 1037"):
        invoice_copies(connected, [invoice_id], fetchers, LIMIT)
    with connected.writing() as session:
        session.execute(delete(SourceToken))
    with pytest.raises(CopyRefused, match="no longer connected: run `arbot connect quickbooks`"):
        invoice_copies(connected, [invoice_id], fetchers, LIMIT)
