"""FreshBooks as a ledger source, against the local fake: full and incremental sync, paging,
US/Eastern times, deleted and draft invoices, payments, malformed records, notes written back,
the token refreshed before it expires and on a 401, a rate limit waited out, and the businesses
a login may pick from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
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
from integrations.freshbooks import (
    FreshBooksAccount,
    FreshBooksSource,
    freshbooks_accounts,
)
from integrations.freshbooks_records import parse_freshbooks_time
from integrations.oauth import MemoryTokenStore, authorize_url, exchange_code, freshbooks_provider
from integrations.oauth_client import OAuthClient
from tests.conftest import NOW
from tests.support.fake_freshbooks import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_ACCOUNT,
    FakeFreshBooks,
    client,
    invoice,
    payment,
)

CURSOR = "2026-03-05T03:00:00+00:00"  # 22:00 on 4 March in New York (EST)
CURSOR_DAY = "2026-03-04"  # what FreshBooks is asked for: its US/Eastern day
BEFORE = "2026-03-03 23:30:00"  # US/Eastern, the day before the cursor's
SAME_DAY = "2026-03-04 21:30:00"  # US/Eastern, the cursor's day, half an hour before it
AFTER = "2026-03-12 10:30:00"  # US/Eastern (EDT): 14:30 UTC
LISTED = {"page": "1", "per_page": "100"}
API = f"/accounting/account/{ACCOUNT}"


@pytest.fixture
def freshbooks() -> Iterator[FakeFreshBooks]:
    fake = FakeFreshBooks().start()
    yield fake
    fake.stop()


class Connected:
    """A FreshBooksSource on the fake, its token store, and the waits it asked for."""

    def __init__(
        self, fake: FakeFreshBooks, clock: FixedClock, expires_in: timedelta = timedelta(hours=12)
    ) -> None:
        tokens = Tokens("fb-access-0", fake.tokens.refresh_token, NOW + expires_in, ACCOUNT)
        self.store = MemoryTokenStore({"freshbooks": tokens})
        self.sleeps: list[float] = []
        client = OAuthClient(
            freshbooks_provider(CLIENT_ID, CLIENT_SECRET, token_endpoint=fake.token_url),
            self.store,
            clock.now,
            sleep=self.sleeps.append,
        )
        self.source = FreshBooksSource(client, ACCOUNT, api_url=fake.url, phone_region="US")

    def fetch(self, cursor: str | None = None) -> LedgerBatch:
        return self.source.fetch_since(cursor)


def _by_number(batch: LedgerBatch) -> dict[str, InvoiceRecord]:
    return {record.number: record for record in batch.invoices}


def _a_small_business(fake: FakeFreshBooks) -> None:
    fake.clients = [
        client(
            1,
            "Ridgeway Clinics",
            "Billing@Ridgeway.example",
            mob_phone="(650) 555-3311",
            fname="Dana",
            lname="Ruiz",
        ),
        client(2, "", bus_phone="415-555-0123", fname="Lee", lname="Ng"),
    ]
    fake.invoices = [
        invoice(101, 1, "0001", "1200.00", "1200.00"),
        invoice(102, 1, "0002", "500.00", "0.00", status="paid"),
        invoice(103, 2, "0003", "80.00", "80.00", vis_state=1),  # deleted
        invoice(104, 2, "0004", "99.00", "99.00", status="draft"),
        invoice(105, 2, "0005", "300.00", "120.50", status="partial", currency="GBP"),
    ]
    fake.payments = [
        payment(201, 102, 1, "500.00"),
        payment(202, 105, 2, "179.50", currency="GBP", transactionid="ch_3Nx"),
    ]


# --- Syncing --------------------------------------------------------------------------------


def test_a_first_sync_reads_clients_invoices_and_payments(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    _a_small_business(freshbooks)
    batch = Connected(freshbooks, clock).fetch()

    assert (batch.source, batch.problems) == ("freshbooks", [])
    assert batch.customers["1"].name == "Ridgeway Clinics"
    assert batch.customers["1"].contacts == [
        ContactRecord("Dana Ruiz", "Billing@ridgeway.example", "+16505553311", None, None, "en")
    ]
    assert batch.customers["2"].name == "Lee Ng"  # no organization: the person's name
    assert batch.customers["2"].contacts == [
        ContactRecord("Lee Ng", None, "+14155550123", None, None, "en")
    ]
    invoices = _by_number(batch)
    assert sorted(invoices) == ["0001", "0002", "0003", "0005"]  # the draft is not owed yet
    assert invoices["0001"] == InvoiceRecord(
        customer_external_id="1",
        number="0001",
        issue_date=date(2026, 1, 15),
        due_date=date(2026, 2, 14),
        currency="USD",
        total=Decimal("1200.00"),
        balance=Decimal("1200.00"),
        external_id="101",
    )
    assert (invoices["0002"].status, invoices["0002"].balance) == (None, Decimal("0.00"))
    assert (invoices["0003"].status, invoices["0003"].balance) == ("void", Decimal("0.00"))
    assert (invoices["0005"].currency, invoices["0005"].balance) == ("GBP", Decimal("120.50"))
    assert batch.payments == [
        PaymentRecord(
            "201", "1", date(2026, 3, 10), Decimal("500.00"), "USD", None,
            (("0002", Decimal("500.00")),),
        ),
        PaymentRecord(
            "202", "2", date(2026, 3, 10), Decimal("179.50"), "GBP", "ch_3Nx",
            (("0005", Decimal("179.50")),),
        ),
    ]  # fmt: skip
    assert [(c.method, c.path, c.query) for c in freshbooks.api_calls()] == [
        ("GET", f"{API}/users/clients", LISTED),
        ("GET", f"{API}/invoices/invoices", LISTED),
        ("GET", f"{API}/invoices/invoices", {"search[vis_state]": "1", **LISTED}),
        ("GET", f"{API}/payments/payments", LISTED),
    ]
    # FreshBooks' clock at the first answer (14:00 UTC), less five minutes of overlap.
    assert batch.cursor == "2026-03-16T13:55:00+00:00"


def test_every_page_is_read_up_to_the_last_one_freshbooks_names(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway Clinics")]
    freshbooks.invoices = [invoice(n, 1, f"{n:04d}", "10.00", "10.00") for n in range(1, 251)]
    batch = Connected(freshbooks, clock).fetch()

    assert len(batch.invoices) == 250
    assert len({i.number for i in batch.invoices}) == 250
    listed = [c.query for c in freshbooks.api_calls("invoices/invoices")]
    assert [q["page"] for q in listed if "search[vis_state]" not in q] == ["1", "2", "3"]
    assert all(q["per_page"] == "100" for q in listed)


def test_an_incremental_sync_asks_for_the_cursors_whole_day_in_us_eastern(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway Clinics", "billing@ridgeway.example", updated=BEFORE)]
    freshbooks.invoices = [
        invoice(101, 1, "0001", "100.00", "100.00", updated=BEFORE),
        invoice(102, 1, "0002", "200.00", "50.00", status="partial", updated=SAME_DAY),
        invoice(103, 1, "0003", "300.00", "300.00", updated=AFTER),
    ]
    batch = Connected(freshbooks, clock).fetch(CURSOR)

    # FreshBooks compares by day: the cursor's day is read again whole, never cut.
    assert sorted(_by_number(batch)) == ["0002", "0003"]
    listed = freshbooks.api_calls()[:4]
    assert all(c.query["search[updated_min]"] == CURSOR_DAY for c in listed)
    # The client did not change, so it was read by id to come with its invoices.
    lookup = freshbooks.api_calls()[4]
    assert (lookup.path, lookup.query) == (f"{API}/users/clients/1", {})
    assert batch.customers["1"].contacts[0].email == "billing@ridgeway.example"
    assert batch.cursor == "2026-03-16T13:55:00+00:00"


def test_freshbooks_times_are_us_eastern_and_kept_in_utc(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    assert parse_freshbooks_time("2019-11-14 11:27:45") == datetime(
        2019, 11, 14, 16, 27, 45, tzinfo=UTC
    )  # EST
    assert parse_freshbooks_time("2026-07-01 09:00:00") == datetime(2026, 7, 1, 13, tzinfo=UTC)

    # Without FreshBooks' clock, the next cursor is the latest change seen, in UTC.
    freshbooks.server_time = None
    freshbooks.clients = [client(1, "Ridgeway Clinics", updated="2026-03-01 12:00:00")]
    freshbooks.invoices = [invoice(101, 1, "0001", "10.00", "10.00", updated=AFTER)]
    assert Connected(freshbooks, clock).fetch().cursor == "2026-03-12T14:30:00+00:00"


def test_deleted_invoices_come_back_void_and_deleted_drafts_not_at_all(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway Clinics", updated=AFTER)]
    freshbooks.invoices = [
        invoice(101, 1, "0001", "100.00", "100.00", vis_state=1, updated=AFTER),
        invoice(102, 1, "0002", "60.00", "60.00", status="draft", vis_state=1, updated=AFTER),
        invoice(103, 1, "0003", "70.00", "70.00", vis_state=1, updated=BEFORE),
        invoice(104, 1, "0004", "80.00", "80.00", updated=AFTER, due_date=None),
    ]
    batch = Connected(freshbooks, clock).fetch(CURSOR)

    invoices = _by_number(batch)
    assert sorted(invoices) == ["0001", "0004"]
    assert (invoices["0001"].status, invoices["0001"].balance) == ("void", Decimal("0.00"))
    assert invoices["0004"].due_date == date(2026, 2, 14)  # 15 January + due_offset_days (30)
    deleted = freshbooks.api_calls("invoices/invoices")[1]
    assert deleted.query == {"search[updated_min]": CURSOR_DAY, "search[vis_state]": "1", **LISTED}


def test_payments_name_the_invoices_they_paid_even_ones_outside_the_batch(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [
        client(2, "Harbor Agency", updated=BEFORE),
        client(3, "Summit Dental", updated=BEFORE),
    ]
    freshbooks.invoices = [
        invoice(131, 2, "1038", "85.00", "0.00", status="paid", updated=BEFORE),
        invoice(132, 2, "1039", "40.00", "10.00", status="partial", updated=AFTER),
        invoice(133, 2, "", "15.00", "0.00", status="paid", updated=BEFORE),  # no number
        invoice(134, 3, "2001", "20.00", "0.00", status="paid", updated=BEFORE),
    ]
    freshbooks.payments = [
        payment(300, 131, 2, "85.00", updated=AFTER),
        payment(301, 132, 2, "30.00", updated=AFTER),
        payment(302, 133, 2, "15.00", updated=AFTER),
        payment(303, 134, 3, "20.00", updated=AFTER),
    ]
    batch = Connected(freshbooks, clock).fetch(CURSOR)

    assert [p.allocations for p in batch.payments] == [
        (("1038", Decimal("85.00")),),
        (("1039", Decimal("30.00")),),
        (("133", Decimal("15.00")),),  # no invoice number: its id is its number
        (("2001", Decimal("20.00")),),
    ]
    looked_up = [c.path for c in freshbooks.api_calls()[4:]]
    assert looked_up == [
        f"{API}/users/clients/2",
        f"{API}/users/clients/3",  # paid by a payment only: its client still comes along
        f"{API}/invoices/invoices/131",
        f"{API}/invoices/invoices/133",
        f"{API}/invoices/invoices/134",
    ]
    assert batch.customers["3"].name == "Summit Dental"


def test_malformed_records_are_reported_by_name_and_field_and_the_rest_syncs(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [
        client(1, "Ridgeway Clinics", "ridgeway@@example", mob_phone="12"),
        client(2, ""),
    ]
    no_issue_date = invoice(101, 1, "0001", "10.00", "10.00")
    del no_issue_date["create_date"]
    freshbooks.invoices = [
        no_issue_date,
        invoice(102, 1, "0002", "12,50", "10.00"),
        invoice(103, 1, "0003", "10.00", "10.00", currency="XYZ"),
        invoice(104, 1, "0004", "10.00", "12.00"),
        invoice(105, 1, "0005", "10.00", "10.00", create_date="2026-02-20"),
        invoice(106, 0, "0006", "10.00", "10.00"),
        invoice(107, 1, "0007", "10.00", "10.00", create_date="15/01/2026", due_date=None),
        invoice(108, 1, "0008", "10.00", "10.00", due_date=None, due_offset_days=None),
        invoice(109, 2, "0009", "10.00", "10.00"),
        invoice(110, 1, "0010", "99.00", "99.00"),
    ]
    freshbooks.payments = [payment(201, 110, 1, "-5.00"), payment(202, 999, 1, "5.00")]
    batch = Connected(freshbooks, clock).fetch()

    assert list(_by_number(batch)) == ["0009", "0010"]
    assert batch.customers["1"].contacts == []  # the client syncs, without the bad address
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "2")] == "client 2: organization is missing"
    assert messages[("invoice", "101")] == (
        "invoice 0001 (FreshBooks id 101): create_date is missing; set it on the record in "
        "FreshBooks"
    )
    assert messages[("invoice", "102")].startswith(
        "invoice 0002 (FreshBooks id 102): amount.amount '12,50' is not a decimal amount"
    )
    assert messages[("invoice", "103")] == (
        "invoice 0003 (FreshBooks id 103): currency_code 'XYZ' is not an ISO 4217 currency code"
    )
    assert messages[("invoice", "104")] == (
        "invoice 0004 (FreshBooks id 104): outstanding 12.00 is more than the total 10.00"
    )
    assert messages[("invoice", "105")] == (
        "invoice 0005 (FreshBooks id 105): due_date 2026-02-14 is before the invoice date "
        "2026-02-20"
    )
    assert messages[("invoice", "106")] == "invoice 0006 (FreshBooks id 106): customerid is missing"
    assert messages[("invoice", "107")] == (
        "invoice 0007 (FreshBooks id 107): create_date '15/01/2026' is not a date (YYYY-MM-DD)"
    )
    assert messages[("invoice", "108")] == (
        "invoice 0008 (FreshBooks id 108): due_date is missing; set the invoice's due date in "
        "FreshBooks"
    )
    assert messages[("payment", "201")] == "payment 201: amount.amount -5.00 is negative"
    assert messages[("payment", "202")] == (
        "payment 202: invoiceid applies it to invoice id 999, which FreshBooks did not return"
    )
    problems = " | ".join(p.message for p in batch.problems)  # client 1 has two
    assert "client Ridgeway Clinics: email 'ridgeway@@example' is not a valid email" in problems
    assert "client Ridgeway Clinics: mob_phone '12' is not a valid phone number" in problems
    # A client FreshBooks could not give us becomes a named customer from the invoice.
    assert batch.customers["2"].name == "Client 2"


def test_dates_outside_the_years_arbot_accepts_and_control_characters_are_reported_by_field(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway\x07Clinics"), client(2, "Harbour Dental")]
    freshbooks.invoices = [
        invoice(101, 2, "0001", "10.00", "10.00", due_date="9999-12-31"),
        invoice(102, 2, "0002", "10.00", "10.00", due_date=None, due_offset_days=10**10),
        invoice(103, 2, "0003", "10.00", "10.00", due_date=None, due_offset_days=40_000),
        invoice(104, 2, "00\u202e04", "10.00", "10.00"),
        invoice(105, 2, "0005", "10.00", "10.00"),
    ]
    batch = Connected(freshbooks, clock).fetch()

    assert list(_by_number(batch)) == ["0005"]
    messages = {(p.kind, p.external_id): p.message for p in batch.problems}
    assert messages[("customer", "1")] == (
        "client Ridgeway\\u0007Clinics: organization contains a control character (U+0007 at "
        "character 9); remove it"
    )
    assert messages[("invoice", "101")] == (
        "invoice 0001 (FreshBooks id 101): due_date 9999-12-31 is outside the dates arbot "
        "accepts (1990-01-01 to 2100-12-31); check it for a typo"
    )
    assert messages[("invoice", "102")] == (
        "invoice 0002 (FreshBooks id 102): due_offset_days 10000000000: the due date is past "
        "the end of the calendar"
    )
    assert messages[("invoice", "103")].startswith(
        "invoice 0003 (FreshBooks id 103): due_offset_days 40000: the due date 2135-07-23 is "
        "outside the dates arbot accepts"
    )
    assert messages[("invoice", "104")] == (
        "invoice 00\\u202e04 (FreshBooks id 104): invoice_number contains a control character "
        "(U+202E at character 3); remove it"
    )


# --- Tokens and limits ------------------------------------------------------------------------


def test_the_token_is_refreshed_before_it_expires_and_the_new_refresh_token_kept(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    _a_small_business(freshbooks)
    connected = Connected(freshbooks, clock, expires_in=timedelta(minutes=2))
    connected.fetch()

    first = freshbooks.requests[0]
    assert (first.path, first.body) == (
        "/auth/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": "fb-refresh-0"},
    )
    assert first.headers["authorization"].startswith("Basic ")
    assert all(c.headers["authorization"] == "Bearer fb-access-1" for c in freshbooks.api_calls())
    stored = connected.store.tokens["freshbooks"]
    # FreshBooks refresh tokens are single-use: the new one is kept at once.
    assert (stored.refresh_token, stored.expires_at) == ("fb-refresh-1", NOW + timedelta(hours=12))
    assert stored.tenant_id == ACCOUNT


def test_a_rate_limit_and_an_expired_token_mid_sync_lose_nothing(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    _a_small_business(freshbooks)
    expected = Connected(freshbooks, clock).fetch()
    freshbooks.retry_after = "2"
    freshbooks.tokens.expire_access()  # FreshBooks answers 401 until the token is refreshed
    connected = Connected(freshbooks, clock)

    assert connected.fetch() == expected
    assert connected.sleeps == [2.0]
    assert len(freshbooks.token_calls()) == 1
    assert connected.store.tokens["freshbooks"].refresh_token == "fb-refresh-1"
    assert freshbooks.tokens.refresh_token == "fb-refresh-1"


# --- Notes written back -----------------------------------------------------------------


def test_a_note_goes_to_the_clients_internal_note_never_onto_the_invoice(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway Clinics", note="Prefers email")]
    freshbooks.invoices = [invoice(101, 1, "0001", "10.00", "10.00", notes="Thank you!")]
    source = Connected(freshbooks, clock).source
    source.add_note("101", "2026-03-16: payment reminder (d+7) sent by email from arbot")

    read_invoice, read_client, update = freshbooks.api_calls()
    assert (read_invoice.method, read_invoice.path) == ("GET", f"{API}/invoices/invoices/101")
    assert (read_client.method, read_client.path) == ("GET", f"{API}/users/clients/1")
    assert (update.method, update.path) == ("PUT", f"{API}/users/clients/1")
    assert update.body == {
        "client": {
            "note": "Prefers email\n"
            "Invoice 0001: 2026-03-16: payment reminder (d+7) sent by email from arbot"
        }
    }  # nothing else: a vis_state here would make FreshBooks drop the note
    assert freshbooks.invoices[0]["notes"] == "Thank you!"  # what the client reads is untouched

    freshbooks.clients[0]["note"] = None
    source.add_note("101", "2026-03-23: payment reminder (d+14) sent by sms from arbot")
    assert freshbooks.clients[0]["note"] == (
        "Invoice 0001: 2026-03-23: payment reminder (d+14) sent by sms from arbot"
    )


def test_a_note_freshbooks_cannot_take_says_why(
    freshbooks: FakeFreshBooks, clock: FixedClock
) -> None:
    freshbooks.clients = [client(1, "Ridgeway Clinics", note="Prefers email")]
    freshbooks.invoices = [invoice(101, 1, "0001", "10.00", "10.00")]
    source = Connected(freshbooks, clock).source

    with pytest.raises(SourceError, match="FreshBooks has no invoice with id 999"):
        source.add_note("999", "reminder sent")
    freshbooks.refuse_updates = "Note is too long."
    with pytest.raises(
        SourceError,
        match=r"refused the note on client Ridgeway Clinics \(invoice 0001\): Note is too long\.",
    ):
        source.add_note("101", "reminder sent")
    assert freshbooks.clients[0]["note"] == "Prefers email"


# --- Connecting -------------------------------------------------------------------------


def test_connecting_asks_for_the_scopes_used_and_trades_the_code_for_tokens(
    freshbooks: FakeFreshBooks,
) -> None:
    provider = freshbooks_provider(
        CLIENT_ID,
        CLIENT_SECRET,
        authorize_endpoint=freshbooks.authorize_url,
        token_endpoint=freshbooks.token_url,
    )
    address = authorize_url(provider, "st4te", "http://localhost:8765/callback")
    assert address.startswith(f"{freshbooks.authorize_url}?client_id={CLIENT_ID}")
    assert (
        "scope=user%3Aprofile%3Aread+user%3Aclients%3Aread+user%3Aclients%3Awrite"
        "+user%3Ainvoices%3Aread+user%3Apayments%3Aread"
    ) in address

    tokens = exchange_code(provider, "the-code", "http://localhost:8765/callback", NOW)
    assert tokens == Tokens("fb-access-1", "fb-refresh-1", NOW + timedelta(hours=12))


def test_the_businesses_of_a_login_are_listed_to_pick_the_account(
    freshbooks: FakeFreshBooks,
) -> None:
    assert freshbooks_accounts("fb-access-0", api_url=freshbooks.url) == [
        FreshBooksAccount(ACCOUNT, "Brightwater Supply Co.", "owner"),
        FreshBooksAccount(OTHER_ACCOUNT, "Harbor Agency", "business_employee"),
    ]
    assert freshbooks.requests[-1].path == "/auth/api/v1/users/me"
    assert freshbooks.requests[-1].headers["authorization"] == "Bearer fb-access-0"

    with pytest.raises(SourceError, match="user:profile:read"):
        freshbooks_accounts("not-a-token", api_url=freshbooks.url)
