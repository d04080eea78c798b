"""Copies of invoices from each accounting source's documented PDF endpoint, against the local
fakes: QuickBooks `invoice/{id}/pdf`, Xero `Invoices/{id}` and FreshBooks
`invoices/invoices/{id}/pdf`, each asked with Accept: application/pdf; and the refusals: no such
invoice (404, QuickBooks' 400), a refused grant (401 after a refresh), something that is not a
PDF, a copy larger than allowed, a source that is down (to be tried later)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.core.clock import FixedClock
from integrations.base.documents import CopyRefused, checked_pdf, pdf_filename
from integrations.base.ledger import Tokens
from integrations.freshbooks import FreshBooksSource
from integrations.oauth import (
    MemoryTokenStore,
    freshbooks_provider,
    quickbooks_provider,
    xero_provider,
)
from integrations.oauth_client import OAuthClient
from integrations.quickbooks import QuickBooksSource
from integrations.xero import XeroSource
from tests.conftest import NOW
from tests.support import fake_freshbooks, fake_quickbooks, fake_xero
from tests.support.fake_freshbooks import FakeFreshBooks
from tests.support.fake_quickbooks import FakeQuickBooks
from tests.support.fake_xero import FakeXero

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
LIMIT = 10_000_000
XERO_ID = "243216c5-369e-4056-ac67-05388f86dc81"


def _client(provider: object, name: str, tokens: Tokens, clock: FixedClock) -> OAuthClient:
    return OAuthClient(
        provider,  # type: ignore[arg-type]
        MemoryTokenStore({name: tokens}),
        clock.now,
        sleep=lambda _seconds: None,
    )


@pytest.fixture
def quickbooks(clock: FixedClock) -> Iterator[tuple[FakeQuickBooks, QuickBooksSource]]:
    fake = FakeQuickBooks().start()
    tokens = Tokens("qb-access-0", "qb-refresh-0", NOW + timedelta(hours=1), fake.realm)
    provider = quickbooks_provider(
        fake_quickbooks.CLIENT_ID, fake_quickbooks.CLIENT_SECRET, token_endpoint=fake.token_url
    )
    client = _client(provider, "quickbooks", tokens, clock)
    yield fake, QuickBooksSource(client, fake.realm, api_url=fake.url)
    client.close()
    fake.stop()


@pytest.fixture
def xero(clock: FixedClock) -> Iterator[tuple[FakeXero, XeroSource]]:
    fake = FakeXero().start()
    tokens = Tokens("xero-access-0", fake.tokens.refresh_token, NOW + timedelta(minutes=30))
    provider = xero_provider(
        fake_xero.CLIENT_ID, fake_xero.CLIENT_SECRET, token_endpoint=fake.token_url
    )
    client = _client(provider, "xero", tokens, clock)
    yield fake, XeroSource(client, fake_xero.TENANT, api_url=fake.url)
    client.close()
    fake.stop()


@pytest.fixture
def freshbooks(clock: FixedClock) -> Iterator[tuple[FakeFreshBooks, FreshBooksSource]]:
    fake = FakeFreshBooks().start()
    account = fake_freshbooks.ACCOUNT
    tokens = Tokens("fb-access-0", fake.tokens.refresh_token, NOW + timedelta(hours=12), account)
    provider = freshbooks_provider(
        fake_freshbooks.CLIENT_ID, fake_freshbooks.CLIENT_SECRET, token_endpoint=fake.token_url
    )
    client = _client(provider, "freshbooks", tokens, clock)
    yield fake, FreshBooksSource(client, account, api_url=fake.url)
    client.close()
    fake.stop()


def test_quickbooks_gives_the_invoice_pdf_asked_for_as_application_pdf(
    quickbooks: tuple[FakeQuickBooks, QuickBooksSource],
) -> None:
    fake, source = quickbooks
    fake.pdfs["130"] = PDF
    assert source.invoice_pdf("130", "1037", LIMIT) == PDF
    (call,) = fake.api_calls("/pdf")
    assert call.path == f"/v3/company/{fake.realm}/invoice/130/pdf"
    assert call.headers["accept"] == "application/pdf"


def test_xero_gives_the_invoice_pdf_from_the_invoice_itself_with_accept_pdf(
    xero: tuple[FakeXero, XeroSource],
) -> None:
    fake, source = xero
    fake.pdfs[XERO_ID] = PDF
    assert source.invoice_pdf(XERO_ID, "INV-0042", LIMIT) == PDF
    (call,) = fake.api_calls(f"Invoices/{XERO_ID}")
    assert call.headers["accept"] == "application/pdf"
    assert call.headers["xero-tenant-id"] == fake_xero.TENANT


def test_freshbooks_gives_the_invoice_pdf_from_its_pdf_endpoint(
    freshbooks: tuple[FakeFreshBooks, FreshBooksSource],
) -> None:
    fake, source = freshbooks
    fake.pdfs["987654"] = PDF
    assert source.invoice_pdf("987654", "0000042", LIMIT) == PDF
    (call,) = fake.api_calls("invoices/invoices/987654/pdf")
    assert call.headers["accept"] == "application/pdf"


def test_an_invoice_the_source_does_not_have_is_refused_naming_it(
    quickbooks: tuple[FakeQuickBooks, QuickBooksSource],
    xero: tuple[FakeXero, XeroSource],
    freshbooks: tuple[FakeFreshBooks, FreshBooksSource],
) -> None:
    for label, source, number in (
        ("QuickBooks", quickbooks[1], "1037"),
        ("Xero", xero[1], "INV-0042"),
        ("FreshBooks", freshbooks[1], "0000042"),
    ):
        with pytest.raises(CopyRefused) as refused:
            source.invoice_pdf("404404", number, LIMIT)
        assert f"{label} has no copy of invoice {number}" in refused.value.message
        assert not refused.value.later


@pytest.mark.parametrize("which", ["quickbooks", "xero", "freshbooks"])
def test_a_401_after_a_token_refresh_is_refused_saying_to_reconnect(
    which: str,
    quickbooks: tuple[FakeQuickBooks, QuickBooksSource],
    xero: tuple[FakeXero, XeroSource],
    freshbooks: tuple[FakeFreshBooks, FreshBooksSource],
) -> None:
    fake, source = {"quickbooks": quickbooks, "xero": xero, "freshbooks": freshbooks}[which]
    fake.pdf_status = 401
    fake.pdfs["7"] = PDF
    with pytest.raises(CopyRefused) as refused:
        source.invoice_pdf("7", "1042", LIMIT)
    assert "could not be fetched" in refused.value.message
    assert f"arbot connect {which}" in refused.value.message
    assert not refused.value.later
    assert fake.tokens.issued == 1  # it refreshed once before giving up


def test_an_answer_that_is_not_a_pdf_is_refused(
    quickbooks: tuple[FakeQuickBooks, QuickBooksSource],
    freshbooks: tuple[FakeFreshBooks, FreshBooksSource],
) -> None:
    qb, qb_source = quickbooks
    qb.pdfs["130"] = b"<html>Sign in to QuickBooks</html>"
    qb.pdf_type = "text/html"
    with pytest.raises(CopyRefused, match="came as text/html, not application/pdf"):
        qb_source.invoice_pdf("130", "1037", LIMIT)
    fb, fb_source = freshbooks
    fb.pdfs["55"] = b"PK\x03\x04 a zip file"  # says it is a PDF, is not
    with pytest.raises(CopyRefused, match=r"is not a PDF .*not %PDF-"):
        fb_source.invoice_pdf("55", "0000055", LIMIT)


def test_a_copy_over_the_limit_is_refused_and_a_source_that_is_down_is_tried_later(
    xero: tuple[FakeXero, XeroSource],
) -> None:
    fake, source = xero
    fake.pdfs[XERO_ID] = PDF + b"x" * 5000
    with pytest.raises(CopyRefused, match="over the 1 kB limit"):
        source.invoice_pdf(XERO_ID, "INV-0042", 1000)
    fake.server_errors = 10
    with pytest.raises(CopyRefused) as refused:
        source.invoice_pdf(XERO_ID, "INV-0042", LIMIT)
    assert refused.value.later


def test_only_what_starts_with_the_pdf_magic_is_a_pdf() -> None:
    assert checked_pdf(PDF, "it", LIMIT) == PDF
    for bad in (b"", b" %PDF-1.4", b"%PDF", b"\x89PNG\r\n"):
        with pytest.raises(CopyRefused):
            checked_pdf(bad, "it", LIMIT)


def test_an_attachment_name_is_the_invoice_number_made_safe() -> None:
    assert pdf_filename("INV-1042") == "INV-1042.pdf"
    assert pdf_filename("../../etc/passwd") == "etc_passwd.pdf"
    assert pdf_filename('A "B"\r\nC') == "A_B_C.pdf"
    assert pdf_filename("..") == "invoice.pdf"
