"""QuickBooks Online as a ledger source, against the local fake: full and incremental sync, paging,
payments, voided and malformed records, notes written back, and a sync that meets a rate limit and
an expired token without losing anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
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
from integrations.errors import SourceError
from integrations.oauth import MemoryTokenStore
from integrations.oauth import quickbooks_provider as provider
from integrations.oauth_client import OAuthClient
from integrations.quickbooks import QuickBooksSource
from tests.conftest import NOW
from tests.support.fake_quickbooks import (
    CLIENT_ID,
    CLIENT_SECRET,
    REALM,
    FakeQuickBooks,
    customer,
    invoice,
    payment,
)

CURSOR = "2026-03-05T00:00:00+00:00"
BEFORE = "2026-03-01T09:00:00-08:00"  # before CURSOR
AFTER = "2026-03-12T10:30:00-07:00"  # after CURSOR


@pytest.fixture
def quickbooks() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    yield fake
    fake.stop()


class Connected:
    """A QuickBooksSource on the fake, its token store, and the waits it asked for."""

    def __init__(self, fake: FakeQuickBooks, clock: FixedClock, page_size: int = 1000) -> None:
        tokens = Tokens("qb-access-0", "qb-refresh-0", NOW + timedelta(hours=1), REALM)
        self.store = MemoryTokenStore({"quickbooks": tokens})
        self.sleeps: list[float] = []
        client = OAuthClient(
            provider(CLIENT_ID, CLIENT_SECRET, token_endpoint=fake.token_url),
            self.store,
            clock.now,
            sleep=self.sleeps.append,
        )
        self.source = QuickBooksSource(client, REALM, api_url=fake.url, page_size=page_size)

    def fetch(self, cursor: str | None = None) -> LedgerBatch:
        return self.source.fetch_since(cursor)


def _by_number(batch: LedgerBatch) -> dict[str, InvoiceRecord]:
    return {record.number: record for record in batch.invoices}


def _a_small_company(fake: FakeQuickBooks) -> None:
    fake.customers = [
        customer("1", "Amy's Bird Sanctuary", "Birds@Intuit.com", "(650) 555-3311"),
        customer("2", "Bill's Windsurf Shop", GivenName="Bill", FamilyName="Lucchini"),
    ]
    fake.invoices = [
        invoice(
            "130",
            "1",
            "1037",
            362.07,
            362.07,
            InvoiceLink="https://connect.intuit.com/t/scs-v1-abc",
            BillEmail={"Address": "ap@birds.example"},
        ),
        invoice("131", "2", "1038", 85.0, 25.5),
    ]
    fake.payments = [payment("200", "2", 59.5, [("131", 59.5)])]


# --- Syncing --------------------------------------------------------------------------------


def test_a_first_sync_reads_customers_invoices_and_payments(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    _a_small_company(quickbooks)
    batch = Connected(quickbooks, clock).fetch()

    assert (batch.source, batch.problems) == ("quickbooks", [])
    amy, bill = batch.customers["1"], batch.customers["2"]
    assert amy.name == "Amy's Bird Sanctuary"
    assert amy.contacts == [
        ContactRecord(None, "Birds@intuit.com", "+16505553311", None, None),
        ContactRecord(None, "ap@birds.example", None, None, None),  # the invoice's BillEmail
    ]
    assert (bill.name, bill.contacts) == ("Bill's Windsurf Shop", [])
    assert _by_number(batch)["1037"] == InvoiceRecord(
        customer_external_id="1",
        number="1037",
        issue_date=date(2026, 1, 15),
        due_date=date(2026, 2, 14),
        currency="USD",
        total=Decimal("362.07"),
        balance=Decimal("362.07"),
        status=None,
        payment_link="https://connect.intuit.com/t/scs-v1-abc",
        external_id="130",
    )
    assert _by_number(batch)["1038"].balance == Decimal("25.50")
    assert batch.payments == [
        PaymentRecord(
            external_id="200",
            customer_external_id="2",
            received_on=date(2026, 3, 10),
            amount=Decimal("59.50"),
            currency="USD",
            allocations=(("1038", Decimal("59.50")),),
        )
    ]
    assert quickbooks.queries() == [
        f"SELECT * FROM {entity} ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
        for entity in ("Customer", "Invoice", "Payment")
    ]
    invoice_query = quickbooks.api_calls("/query")[1]
    assert (invoice_query.query["include"], invoice_query.query["minorversion"]) == (
        "invoiceLink",
        "75",
    )
    # The server's clock at the first answer (14:00 UTC), less five minutes of overlap.
    assert batch.cursor == "2026-03-16T13:55:00+00:00"


def test_every_page_is_read_until_a_short_one(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [customer("1", "Amy's Bird Sanctuary")]
    quickbooks.invoices = [invoice(str(100 + n), "1", f"10{n}", 10.0, 10.0) for n in range(5)]
    batch = Connected(quickbooks, clock, page_size=2).fetch()
    assert sorted(_by_number(batch)) == ["100", "101", "102", "103", "104"]
    assert [q for q in quickbooks.queries() if "FROM Invoice" in q] == [
        "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 1 MAXRESULTS 2",
        "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 3 MAXRESULTS 2",
        "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 5 MAXRESULTS 2",
    ]


def test_an_incremental_sync_asks_only_for_what_changed_since_the_cursor(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [customer("1", "Amy's Bird Sanctuary", "birds@intuit.com")]
    quickbooks.invoices = [
        invoice("130", "1", "1037", 100.0, 100.0, updated=BEFORE),
        invoice("131", "1", "1038", 200.0, 150.0, updated=AFTER),
    ]
    batch = Connected(quickbooks, clock).fetch(CURSOR)

    assert list(_by_number(batch)) == ["1038"]
    changed = f"MetaData.LastUpdatedTime >= '{CURSOR}'"
    assert quickbooks.queries()[:3] == [
        f"SELECT * FROM {entity} WHERE {changed} ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
        for entity in ("Customer", "Invoice", "Payment")
    ]
    # Its customer did not change, so it was fetched by id to come with the invoice.
    assert quickbooks.queries()[3] == (
        "SELECT * FROM Customer WHERE Id IN ('1') ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert batch.customers["1"].contacts[0].email == "birds@intuit.com"
    assert batch.cursor == "2026-03-16T13:55:00+00:00"


def test_a_voided_invoice_comes_back_void(quickbooks: FakeQuickBooks, clock: FixedClock) -> None:
    quickbooks.customers = [customer("1", "Amy's Bird Sanctuary")]
    quickbooks.invoices = [
        invoice("207", "1", "1067", 0, 0, PrivateNote="Voided"),
        invoice("208", "1", "1068", 0, 0, PrivateNote="No charge: warranty"),
    ]
    invoices = _by_number(Connected(quickbooks, clock).fetch())
    assert (invoices["1067"].status, invoices["1067"].balance) == ("void", Decimal("0.00"))
    assert invoices["1068"].status is None  # a zero invoice that was never voided


def test_payments_name_the_invoices_they_paid_even_ones_outside_the_batch(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [customer("2", "Bill's Windsurf Shop")]
    quickbooks.invoices = [
        invoice("131", "2", "1038", 85.0, 0, updated=BEFORE),  # paid; unchanged since the cursor
        invoice("132", "2", "1039", 40.0, 10.0, updated=AFTER),
        invoice("133", "2", None, 15.0, 0, updated=BEFORE),  # no DocNumber: its Id is its number
    ]
    quickbooks.payments = [
        payment("300", "2", 130.0, [("131", 85.0), ("132", 30.0), ("133", 15.0)], updated=AFTER)
    ]
    batch = Connected(quickbooks, clock).fetch(CURSOR)
    assert batch.payments[0].allocations == (
        ("1038", Decimal("85.00")),
        ("1039", Decimal("30.00")),
        ("133", Decimal("15.00")),
    )
    assert batch.payments[0].amount == Decimal("130.00")
    assert "Id IN ('131', '133')" in quickbooks.queries()[-1]


def test_an_invoice_without_a_currency_is_in_the_company_home_currency(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.home_currency = "CAD"
    quickbooks.customers = [customer("1", "Amy's Bird Sanctuary")]
    quickbooks.invoices = [invoice("130", "1", "1037", 10.0, 10.0)]
    del quickbooks.invoices[0]["CurrencyRef"]
    assert Connected(quickbooks, clock).fetch().invoices[0].currency == "CAD"


def test_malformed_records_are_reported_by_name_and_field_and_the_rest_syncs(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [
        customer("1", "Amy's Bird Sanctuary", "not an address"),
        customer("2", "Bill's Windsurf Shop"),
    ]
    no_due_date = invoice("130", "1", "1037", 10.0, 10.0)
    del no_due_date["DueDate"]
    quickbooks.invoices = [
        no_due_date,
        invoice("131", "1", "1038", "12,50", 10.0),  # type: ignore[arg-type]
        invoice("132", "2", "1039", 10.0, 10.0, currency="XYZ"),
        invoice("133", "2", "1040", 10.0, 12.0),
        invoice("134", "2", "1041", 99.0, 99.0),
    ]
    batch = Connected(quickbooks, clock).fetch()

    assert list(_by_number(batch)) == ["1041"]
    assert batch.customers["1"].contacts == []  # the customer syncs, without the bad address
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "1")].startswith(
        "customer Amy's Bird Sanctuary: PrimaryEmailAddr 'not an address' is not a valid email"
    )
    assert messages[("invoice", "130")] == (
        "invoice 1037 (QuickBooks Id 130): DueDate is missing; set it on the record in QuickBooks"
    )
    assert messages[("invoice", "131")].startswith(
        "invoice 1038 (QuickBooks Id 131): TotalAmt '12,50'"
    )
    assert messages[("invoice", "132")] == (
        "invoice 1039 (QuickBooks Id 132): CurrencyRef 'XYZ' is not an ISO 4217 currency code"
    )
    assert messages[("invoice", "133")] == (
        "invoice 1040 (QuickBooks Id 133): Balance 12.00 is more than the total 10.00"
    )


def test_dates_outside_the_years_arbot_accepts_and_control_characters_are_reported_by_field(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [
        customer("1", "Acme \u202eDTL"),
        customer("2", "Bill's Windsurf Shop"),
    ]
    quickbooks.invoices = [
        invoice("130", "2", "1037", 10.0, 10.0, due="9999-12-31"),
        invoice("131", "2", "1038", 10.0, 10.0, issued="0001-01-01"),
        invoice("132", "2", "10\x0039", 10.0, 10.0),
        invoice("133", "2", "1040", 99.0, 99.0),
    ]
    quickbooks.payments = [payment("200", "2", 5.0, [("133", 5.0)], received="9999-01-01")]
    batch = Connected(quickbooks, clock).fetch()

    assert list(_by_number(batch)) == ["1040"]
    assert batch.payments == []
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "1")] == (
        "customer Acme \\u202eDTL: DisplayName contains a control character (U+202E at "
        "character 6); remove it"
    )
    assert messages[("invoice", "130")] == (
        "invoice 1037 (QuickBooks Id 130): DueDate 9999-12-31 is outside the dates arbot accepts "
        "(1990-01-01 to 2100-12-31); check it for a typo"
    )
    assert messages[("invoice", "131")].startswith(
        "invoice 1038 (QuickBooks Id 131): TxnDate 0001-01-01 is outside the dates arbot accepts"
    )
    assert messages[("invoice", "132")] == (
        "invoice 10\\u000039 (QuickBooks Id 132): DocNumber contains a control character "
        "(U+0000 at character 3); remove it"
    )
    assert messages[("payment", "200")].startswith(
        "payment 200: TxnDate 9999-01-01 is outside the dates arbot accepts"
    )


def test_a_rate_limit_and_an_expired_token_mid_sync_lose_nothing(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    _a_small_company(quickbooks)
    expected = Connected(quickbooks, clock).fetch()
    quickbooks.retry_after = "3"
    quickbooks.tokens.expire_access()
    connected = Connected(quickbooks, clock)
    connected.store.tokens["quickbooks"] = Tokens(
        "qb-access-0", quickbooks.tokens.refresh_token, NOW + timedelta(hours=1), REALM
    )
    batch = connected.fetch()
    assert batch == expected
    assert connected.sleeps == [3.0]
    assert connected.store.tokens["quickbooks"].refresh_token == quickbooks.tokens.refresh_token


# --- Notes written back ----------------------------------------------------------------


def test_a_note_is_attached_to_the_invoice_never_sent_and_its_statement_memo_untouched(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    # PrivateNote is the invoice's "statement memo": it is printed on the customer's statement,
    # so a note naming the contact's address must never go there.
    quickbooks.invoices = [
        invoice("130", "1", "1037", 10.0, 10.0, SyncToken="3", PrivateNote="Call before delivery")
    ]
    note = "2026-03-16: reminder emailed to birds@amy.example (step +7)"
    Connected(quickbooks, clock).source.add_note("130", note)

    (attach,) = quickbooks.api_calls()
    assert (attach.method, attach.path) == ("POST", f"/v3/company/{REALM}/attachable")
    assert attach.body == {
        "Note": note,
        "AttachableRef": [
            {"EntityRef": {"type": "Invoice", "value": "130"}, "IncludeOnSend": False}
        ],
    }
    assert quickbooks.invoices[0]["PrivateNote"] == "Call before delivery"
    assert quickbooks.invoices[0]["SyncToken"] == "3"  # the invoice itself is not changed
    assert quickbooks.attachables[0]["Note"] == note


def test_a_note_on_a_voided_invoice_leaves_it_voided(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.customers = [customer("1", "Amy's Bird Sanctuary")]
    quickbooks.invoices = [invoice("207", "1", "1067", 0, 0, PrivateNote="Voided")]
    connected = Connected(quickbooks, clock)
    connected.source.add_note("207", "2026-03-16: reminder emailed (step +7)")
    assert _by_number(connected.fetch())["1067"].status == "void"


def test_a_note_longer_than_quickbooks_takes_is_cut_and_an_unknown_invoice_is_named(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.invoices = [invoice("130", "1", "1037", 10.0, 10.0)]
    source = Connected(quickbooks, clock).source
    source.add_note("130", "reminder " * 300)
    note = quickbooks.attachables[0]["Note"]
    assert len(note) == 2000 and note.startswith("reminder reminder") and note.endswith("…")

    with pytest.raises(SourceError, match="QuickBooks refused the note on invoice Id 999"):
        source.add_note("999", "reminder sent")
    assert len(quickbooks.attachables) == 1
