"""Xero as a ledger source, against the local fake: full and incremental sync, paging, statuses,
contacts and phones, payments, malformed records, history notes, and a sync that meets a rate
limit and an expired token without losing anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.core.clock import FixedClock
from integrations.base.ledger import (
    ContactRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    Tokens,
)
from integrations.oauth import MemoryTokenStore, xero_provider
from integrations.oauth_client import OAuthClient
from integrations.xero import XeroSource, XeroTenant, parse_xero_date, xero_tenants
from tests.conftest import NOW
from tests.support.fake_xero import (
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    FakeXero,
    contact,
    invoice,
    payment,
    phone,
)

CURSOR = "2026-03-05T00:00:00+00:00"
BEFORE = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
AFTER = datetime(2026, 3, 12, 17, 30, tzinfo=UTC)


@pytest.fixture
def xero() -> Iterator[FakeXero]:
    fake = FakeXero().start()
    yield fake
    fake.stop()


class Connected:
    """A XeroSource on the fake, its token store, and the waits it asked for."""

    def __init__(self, fake: FakeXero, clock: FixedClock) -> None:
        tokens = Tokens("xero-access-0", fake.tokens.refresh_token, NOW + timedelta(minutes=30))
        self.store = MemoryTokenStore({"xero": tokens})
        self.sleeps: list[float] = []
        client = OAuthClient(
            xero_provider(CLIENT_ID, CLIENT_SECRET, token_endpoint=fake.token_url),
            self.store,
            clock.now,
            sleep=self.sleeps.append,
        )
        self.source = XeroSource(client, TENANT, api_url=fake.url, phone_region="US")

    def fetch(self, cursor: str | None = None) -> LedgerBatch:
        return self.source.fetch_since(cursor)


def _by_number(batch: LedgerBatch) -> dict[str, InvoiceRecord]:
    return {record.number: record for record in batch.invoices}


def _a_small_organisation(fake: FakeXero) -> None:
    fake.contacts = [
        contact(
            "c-1",
            "Ridgeway Clinics",
            "Billing@Ridgeway.example",
            [phone("DEFAULT", "5550143", "212", "1"), phone("MOBILE", "79460958", "020", "44")],
            FirstName="Dana",
            LastName="Ruiz",
            ContactPersons=[
                {"FirstName": "Lee", "LastName": "Ng", "EmailAddress": "lee@ridgeway.example"},
                {"EmailAddress": "quiet@ridgeway.example", "IncludeInEmails": False},
            ],
        ),
        contact("c-2", "Harbor Agency", phones=[phone("DEFAULT", "555-0123", "415")]),
    ]
    fake.invoices = [
        invoice("i-1", "c-1", "INV-0001", 1200.0, 1200.0),
        invoice("i-2", "c-1", "INV-0002", 500.0, 0.0, status="PAID"),
        invoice("i-3", "c-2", "INV-0003", 80.0, 80.0, status="VOIDED", due=None),
        invoice("i-4", "c-2", "INV-0004", 99.0, 99.0, status="DRAFT"),
        invoice("i-5", "c-2", "INV-0005", 300.0, 120.5, currency="GBP"),
    ]
    fake.payments = [
        payment("p-1", "i-2", "INV-0002", "c-1", 500.0),
        payment("p-2", "i-5", "INV-0005", "c-2", 179.5, currency="GBP"),
        payment("p-3", "i-5", "INV-0005", "c-2", 20.0, currency="GBP", Status="DELETED"),
    ]


def test_a_first_sync_reads_contacts_invoices_and_payments(
    xero: FakeXero, clock: FixedClock
) -> None:
    _a_small_organisation(xero)
    batch = Connected(xero, clock).fetch()

    assert (batch.source, batch.problems) == ("xero", [])
    ridgeway = batch.customers["c-1"]
    assert ridgeway.name == "Ridgeway Clinics"
    assert ridgeway.contacts == [
        ContactRecord("Dana Ruiz", "Billing@ridgeway.example", "+442079460958", None, None),
        ContactRecord("Lee Ng", "lee@ridgeway.example", None, None, None),
    ]
    assert batch.customers["c-2"].contacts == [
        ContactRecord(None, None, "+14155550123", None, None)
    ]
    invoices = _by_number(batch)
    assert sorted(invoices) == ["INV-0001", "INV-0002", "INV-0003", "INV-0005"]  # no draft
    assert invoices["INV-0001"] == InvoiceRecord(
        customer_external_id="c-1",
        number="INV-0001",
        issue_date=date(2026, 1, 15),
        due_date=date(2026, 2, 14),
        currency="USD",
        total=Decimal("1200.00"),
        balance=Decimal("1200.00"),
        external_id="i-1",
    )
    assert (invoices["INV-0002"].status, invoices["INV-0002"].balance) == (None, Decimal("0.00"))
    assert (invoices["INV-0003"].status, invoices["INV-0003"].balance) == ("void", Decimal("0.00"))
    assert (invoices["INV-0005"].currency, invoices["INV-0005"].balance) == (
        "GBP",
        Decimal("120.50"),
    )
    assert batch.payments == [
        PaymentRecord(
            "p-1", "c-1", date(2026, 3, 10), Decimal("500.00"), "USD", "Transfer p-1",
            (("INV-0002", Decimal("500.00")),),
        ),
        PaymentRecord(
            "p-2", "c-2", date(2026, 3, 10), Decimal("179.50"), "GBP", "Transfer p-2",
            (("INV-0005", Decimal("179.50")),),
        ),
    ]  # fmt: skip
    calls = xero.api_calls()
    assert [(c.path, c.query) for c in calls] == [
        ("/api.xro/2.0/Contacts", {"where": "IsCustomer==true", "page": "1"}),
        ("/api.xro/2.0/Invoices", {"where": 'Type=="ACCREC"', "page": "1"}),
        ("/api.xro/2.0/Payments", {"where": 'PaymentType=="ACCRECPAYMENT"', "page": "1"}),
    ]
    assert all(c.headers["xero-tenant-id"] == TENANT for c in calls)
    assert not any("if-modified-since" in c.headers for c in calls)
    assert batch.cursor == "2026-03-16T13:55:00+00:00"


def test_invoices_are_read_page_by_page_until_one_holds_fewer_than_100(
    xero: FakeXero, clock: FixedClock
) -> None:
    xero.contacts = [contact("c-1", "Ridgeway Clinics")]
    xero.invoices = [invoice(f"i-{n}", "c-1", f"INV-{n:04d}", 10.0, 10.0) for n in range(250)]
    batch = Connected(xero, clock).fetch()
    assert len(batch.invoices) == 250
    assert len({i.number for i in batch.invoices}) == 250
    assert [c.query["page"] for c in xero.api_calls("Invoices")] == ["1", "2", "3"]


def test_an_incremental_sync_sends_the_cursor_as_if_modified_since(
    xero: FakeXero, clock: FixedClock
) -> None:
    xero.contacts = [contact("c-1", "Ridgeway Clinics", "billing@ridgeway.example", updated=BEFORE)]
    xero.invoices = [
        invoice("i-1", "c-1", "INV-0001", 100.0, 100.0, updated=BEFORE),
        invoice("i-2", "c-1", "INV-0002", 200.0, 50.0, updated=AFTER),
    ]
    batch = Connected(xero, clock).fetch(CURSOR)

    assert list(_by_number(batch)) == ["INV-0002"]
    listed = xero.api_calls()[:3]
    assert all(c.headers["if-modified-since"] == "2026-03-05T00:00:00" for c in listed)
    # The contact did not change, so it was fetched by id to come with its invoice.
    lookup = xero.api_calls()[3]
    assert lookup.query == {"IDs": "c-1", "includeArchived": "true"}
    assert "if-modified-since" not in lookup.headers
    assert batch.customers["c-1"].contacts[0].email == "billing@ridgeway.example"


def test_xero_dates_are_read_with_and_without_a_zone() -> None:
    assert parse_xero_date("/Date(1439434356790)/") == datetime(
        2015, 8, 13, 2, 52, 36, 790000, tzinfo=UTC
    )
    midnight = parse_xero_date("/Date(1243382400000+0000)/")
    assert (midnight, midnight.date()) == (datetime(2009, 5, 27, tzinfo=UTC), date(2009, 5, 27))
    auckland = parse_xero_date("/Date(1518685950940+1300)/")
    assert auckland.utcoffset() == timedelta(hours=13)
    assert auckland == datetime(2018, 2, 15, 9, 12, 30, 940000, tzinfo=UTC)
    assert auckland.date() == date(2018, 2, 15)
    assert parse_xero_date("2009-05-27T00:00:00").tzinfo == UTC
    assert parse_xero_date("/Date(0-0500)/").tzinfo == timezone(timedelta(hours=-5))


def test_malformed_records_are_reported_by_name_and_field_and_the_rest_syncs(
    xero: FakeXero, clock: FixedClock
) -> None:
    xero.contacts = [
        contact("c-1", "Ridgeway Clinics", "ridgeway@@example", [phone("MOBILE", "12", "", "1")]),
        contact("c-2", ""),
    ]
    xero.invoices = [
        invoice("i-1", "c-1", "INV-0001", 10.0, 10.0, due=None),
        invoice("i-2", "c-1", "INV-0002", 10.0, 10.0, Total="ten"),
        invoice("i-3", "c-1", "INV-0003", 10.0, 10.0, currency="ABC"),
        invoice("i-4", "c-1", "INV-0004", 10.0, 10.0, Date="/Date(garbage)/"),
        invoice("i-5", "c-2", "INV-0005", 10.0, 10.0),
        invoice("i-6", "c-1", "INV-0006", 10.0, 10.0),
    ]
    xero.payments = [payment("p-1", "i-6", "INV-0006", "c-1", -5.0)]
    batch = Connected(xero, clock).fetch()

    assert list(_by_number(batch)) == ["INV-0005", "INV-0006"]
    assert batch.customers["c-1"].contacts == []
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "c-2")] == "contact c-2: Name is missing"
    assert messages[("invoice", "i-1")] == (
        "invoice INV-0001: DueDate is missing; set it on the record in Xero"
    )
    assert messages[("invoice", "i-2")].startswith("invoice INV-0002: Total 'ten'")
    assert messages[("invoice", "i-3")] == (
        "invoice INV-0003: CurrencyCode 'ABC' is not an ISO 4217 currency code"
    )
    assert messages[("invoice", "i-4")] == "invoice INV-0004: Date '/Date(garbage)/' is not a date"
    assert messages[("payment", "p-1")] == "payment p-1: Amount -5.0 is negative"
    problems = " | ".join(p.message for p in batch.problems)  # c-1 has two
    assert "EmailAddress 'ridgeway@@example' is not a valid email" in problems
    assert "MOBILE phone '12' is not a valid phone number" in problems
    # A contact Xero did not give us becomes a named customer from the invoice, never a hole.
    assert batch.customers["c-2"].name == "Contact c-2"


def test_dates_outside_the_years_arbot_accepts_and_control_characters_are_reported_by_field(
    xero: FakeXero, clock: FixedClock
) -> None:
    xero.contacts = [contact("c-1", "Ridgeway\x1b[2J Clinics"), contact("c-2", "Harbour Dental")]
    xero.invoices = [
        invoice("i-1", "c-2", "INV-0001", 10.0, 10.0, due=date(9999, 12, 31)),
        invoice("i-2", "c-2", "INV-0002", 10.0, 10.0, issued=date(1970, 1, 1)),
        invoice("i-3", "c-2", "INV\u20660003", 10.0, 10.0),
        invoice("i-4", "c-2", "INV-0004", 10.0, 10.0),
    ]
    batch = Connected(xero, clock).fetch()

    assert list(_by_number(batch)) == ["INV-0004"]
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "c-1")] == (
        "contact Ridgeway\\u001b[2J Clinics: Name contains a control character (U+001B at "
        "character 9); remove it"
    )
    assert messages[("invoice", "i-1")] == (
        "invoice INV-0001: DueDate 9999-12-31 is outside the dates arbot accepts "
        "(1990-01-01 to 2100-12-31); check it for a typo"
    )
    assert messages[("invoice", "i-2")].startswith(
        "invoice INV-0002: Date 1970-01-01 is outside the dates arbot accepts"
    )
    assert messages[("invoice", "i-3")] == (
        "invoice INV\\u20660003: InvoiceNumber contains a control character (U+2066 at "
        "character 4); remove it"
    )


def test_a_rate_limit_and_an_expired_token_mid_sync_lose_nothing(
    xero: FakeXero, clock: FixedClock
) -> None:
    _a_small_organisation(xero)
    expected = Connected(xero, clock).fetch()
    xero.retry_after = "2"
    xero.tokens.expire_access()
    connected = Connected(xero, clock)
    assert connected.fetch() == expected
    assert connected.sleeps == [2.0]
    assert (
        connected.store.tokens["xero"].refresh_token
        == xero.tokens.refresh_token
        == "xero-refresh-1"
    )


def test_a_note_goes_to_the_invoice_history_within_xeros_250_characters(
    xero: FakeXero, clock: FixedClock
) -> None:
    xero.invoices = [invoice("i-1", "c-1", "INV-0001", 10.0, 10.0)]
    source = Connected(xero, clock).source
    source.add_note("i-1", "2026-03-16: reminder emailed to billing@ridgeway.example (step +7)")
    source.add_note("i-1", "z" * 300)

    first, second = xero.api_calls()
    assert (first.method, first.path) == ("PUT", "/api.xro/2.0/Invoices/i-1/History")
    assert first.headers["xero-tenant-id"] == TENANT
    assert first.body == {
        "HistoryRecords": [
            {"Details": "2026-03-16: reminder emailed to billing@ridgeway.example (step +7)"}
        ]
    }
    assert second.body["HistoryRecords"][0]["Details"] == "z" * 249 + "…"
    assert len(xero.history["i-1"]) == 2


def test_the_connected_organisations_are_listed_to_pick_the_tenant(xero: FakeXero) -> None:
    assert xero_tenants("xero-access-0", api_url=xero.url) == [
        XeroTenant(TENANT, "Brightwater Supply Co.", "ORGANISATION")
    ]
    assert xero.requests[-1].headers["authorization"] == "Bearer xero-access-0"
