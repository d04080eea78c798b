"""HubSpot as a CRM source, against the local fake: a full fetch across pages, an incremental one
through the search endpoint, owners, the billing contact, malformed companies, rate limits, server
errors, a refused token, and notes written to a company's timeline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from integrations.base.ledger import ContactRecord, CrmAccount, CrmBatch
from integrations.crm_http import CrmTokenRejected
from integrations.errors import SourceError, SourceUnavailable
from integrations.hubspot import HubSpotSource
from tests.conftest import NOW
from tests.support.fake_http import local_client
from tests.support.fake_hubspot import TOKEN, FakeHubSpot, company, contact, owner
from tests.support.slack_requests import PATIENCE

CURSOR = "2026-03-05T00:00:00+00:00"
BEFORE = "2026-03-01T17:00:00.000Z"  # before CURSOR
AFTER = "2026-03-12T17:30:00.250Z"  # after CURSOR


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


class Connected:
    """A HubSpotSource on the fake, and the waits it asked for."""

    def __init__(self, fake: FakeHubSpot, token: str = TOKEN, **options: object) -> None:
        self.sleeps: list[float] = []
        self.http = local_client(timeout=PATIENCE)
        self.source = HubSpotSource(
            self.http,
            token,
            api_url=fake.url,
            tags_property="arbot_tags",
            sleep=self.sleeps.append,
            clock=FixedClock(NOW),
            **options,  # type: ignore[arg-type]
        )

    def fetch(self, cursor: str | None = None) -> CrmBatch:
        return self.source.fetch_accounts(cursor)


@pytest.fixture
def connected(hubspot: FakeHubSpot) -> Iterator[Connected]:
    source = Connected(hubspot, page_size=2)
    yield source
    source.http.close()


def _by_name(batch: CrmBatch) -> dict[str, CrmAccount]:
    return {account.name: account for account in batch.accounts}


def _five_companies(fake: FakeHubSpot) -> None:
    fake.owners = {
        "71": owner("71", "Dana.Reyes@Seller.example", "Dana", "Reyes"),
        "72": owner("72", "sam@seller.example", "Sam", "Okafor"),
    }
    fake.companies = [
        company(
            "101",
            "Ridgeline Builders",
            "ridgeline.example",
            owner="71",
            hs_additional_domains="ridgeline-homes.example;www.ridgeline.co.uk",
            arbot_tier="Strategic",
            arbot_customer_id="CUST-001",
            arbot_tags="construction; net-60",
        ),
        company("102", "Harbor Clinic", "https://www.harborclinic.example/", owner="72"),
        company("103", "Pinecrest Agency", "pinecrest.example", owner="71", arbot_tier="standard"),
        company("104", "Lumen Dental", "lumen.example", arbot_tier="TRANSACTIONAL"),
        company("105", "Bayside Supply", "bayside.example", arbot_tags="wholesale,net-30"),
    ]
    fake.contacts = {
        "201": contact("201", "Mara", "Vance", "mara@ridgeline.example", jobtitle="CEO"),
        "202": contact(
            "202", "Theo", "Park", "AP@Ridgeline.example", "(415) 555-0142", "Office manager"
        ),
        "203": contact("203", "Ines", "Cole", "ines@harborclinic.example", "+44 20 7946 0958"),
    }
    fake.associations = {
        "101": [("201", None), ("202", "Billing contact")],
        "102": [("203", None)],
    }


def test_a_full_fetch_reads_every_company_across_pages(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)

    batch = connected.fetch()

    assert batch.source == "hubspot"
    assert batch.problems == []
    assert [a.crm_id for a in batch.accounts] == ["101", "102", "103", "104", "105"]
    ridgeline = _by_name(batch)["Ridgeline Builders"]
    assert ridgeline == CrmAccount(
        crm_id="101",
        name="Ridgeline Builders",
        domains=("ridgeline.example", "ridgeline-homes.example", "ridgeline.co.uk"),
        external_id="CUST-001",
        tier="strategic",
        owner_email="dana.reyes@seller.example",
        billing_contact=ContactRecord(
            "Theo Park", "AP@ridgeline.example", "+14155550142", None, None
        ),
        tags=("construction", "net-60"),
    )
    harbor = _by_name(batch)["Harbor Clinic"]
    assert harbor.domains == ("harborclinic.example",)
    assert harbor.tier is None and harbor.external_id is None
    assert harbor.billing_contact is None  # nobody there is marked as handling billing
    assert _by_name(batch)["Lumen Dental"].tier == "transactional"
    assert _by_name(batch)["Bayside Supply"].tags == ("wholesale", "net-30")
    assert _by_name(batch)["Bayside Supply"].billing_contact is None
    # Three pages of two, each asking for the configured properties.
    pages = hubspot.calls("/crm/v3/objects/companies", "GET")
    assert [p.query.get("after") for p in pages] == [None, "2", "4"]
    asked = set(pages[0].query["properties"].split(","))
    assert {"name", "domain", "hubspot_owner_id", "arbot_tier", "arbot_customer_id"} <= asked
    assert "arbot_tags" in asked
    assert all(p.headers["authorization"] == f"Bearer {TOKEN}" for p in hubspot.requests)
    assert batch.cursor == "2026-03-01T17:00:00+00:00"


def test_each_owner_is_looked_up_once_per_fetch(hubspot: FakeHubSpot, connected: Connected) -> None:
    _five_companies(hubspot)

    batch = connected.fetch()

    owners = [r.path for r in hubspot.requests if r.path.startswith("/crm/v3/owners/")]
    assert sorted(owners) == ["/crm/v3/owners/71", "/crm/v3/owners/72"]
    emails = {a.name: a.owner_email for a in batch.accounts}
    assert emails["Pinecrest Agency"] == "dana.reyes@seller.example"
    assert emails["Harbor Clinic"] == "sam@seller.example"
    assert emails["Lumen Dental"] is None


def test_an_owner_gone_from_hubspot_is_a_problem_and_the_account_still_comes(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [company("101", "Ridgeline Builders", "ridgeline.example", owner="79")]

    batch = connected.fetch()

    assert batch.accounts[0].owner_email is None
    assert [p.message for p in batch.problems] == [
        "HubSpot company Ridgeline Builders (id 101): owner 79 is not a HubSpot user any more; "
        "no owner was taken"
    ]


def test_the_billing_contact_is_the_labelled_one_else_a_billing_title_else_the_first(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [
        company("101", "Labelled", "labelled.example"),
        company("102", "Titled", "titled.example"),
        company("103", "Neither", "neither.example"),
    ]
    hubspot.contacts = {
        "201": contact("201", "Ana", "Ruiz", "ana@labelled.example", jobtitle="Accounts Payable"),
        "202": contact("202", "Ben", "Ito", "ben@labelled.example"),
        "203": contact("203", "Cy", "Moss", "cy@titled.example", jobtitle="Founder"),
        "204": contact("204", "Di", "Lund", "di@titled.example", jobtitle="Billing Specialist"),
        "205": contact("205", "Ed", "Nash", None, jobtitle="Owner"),
        "206": contact("206", "Flo", "Ames", "flo@neither.example", jobtitle="Designer"),
        "207": contact("207", "Gus", "Hale", "gus@neither.example", jobtitle="CTO"),
    }
    hubspot.associations = {
        "101": [("201", None), ("202", "Billing contact")],
        "102": [("203", None), ("204", None)],
        "103": [("205", None), ("206", None), ("207", None)],
    }

    batch = connected.fetch()

    chosen = {a.name: a.billing_contact.email for a in batch.accounts if a.billing_contact}
    assert chosen == {
        "Labelled": "ben@labelled.example",  # the label wins over the other's title
        "Titled": "di@titled.example",
        # "Neither": nobody is marked as handling billing, so nobody is taken
    }
    assert all(not a.billing_contact.sms_consent for a in batch.accounts if a.billing_contact)


def test_a_chief_financial_officer_not_labelled_billing_is_never_the_billing_contact(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [company("101", "Exec Only", "exec.example")]
    hubspot.contacts = {
        "201": contact(
            "201", "Ana", "Ruiz", "ana@exec.example", jobtitle="Chief Financial Officer"
        ),
        "202": contact("202", "Ben", "Ito", "ben@exec.example", jobtitle="Financial Controller"),
        "203": contact("203", "Cy", "Moss", "cy@exec.example", jobtitle="Accounting Manager"),
    }
    hubspot.associations = {"101": [("201", None), ("202", None), ("203", None)]}

    [account] = connected.fetch().accounts

    assert account.billing_contact is None


def test_an_incremental_fetch_searches_only_what_changed_since_the_cursor(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [
        company("101", "Ridgeline Builders", "ridgeline.example", modified=BEFORE),
        company("102", "Harbor Clinic", "harborclinic.example", modified=AFTER),
        company("103", "Pinecrest Agency", "pinecrest.example", modified="2026-03-10T08:00:00Z"),
    ]

    batch = connected.fetch(CURSOR)

    assert [a.name for a in batch.accounts] == ["Pinecrest Agency", "Harbor Clinic"]
    assert batch.cursor == "2026-03-12T17:30:00+00:00"  # the latest change seen
    assert hubspot.calls("/crm/v3/objects/companies", "GET") == []
    search = hubspot.calls("/crm/v3/objects/companies/search")[0].body
    since = datetime(2026, 3, 5, tzinfo=UTC) - timedelta(minutes=5)  # search lags edits a little
    assert search["filterGroups"] == [
        {
            "filters": [
                {
                    "propertyName": "hs_lastmodifieddate",
                    "operator": "GTE",
                    "value": str(int(since.timestamp() * 1000)),
                }
            ]
        }
    ]
    assert search["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert "arbot_tier" in search["properties"]


def test_an_incremental_fetch_pages_through_the_search(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [
        company(str(100 + n), f"Company {n}", f"c{n}.example", modified=f"2026-03-1{n}T09:00:00Z")
        for n in range(5)
    ]

    batch = connected.fetch(CURSOR)

    assert [a.name for a in batch.accounts] == [f"Company {n}" for n in range(5)]
    searches = hubspot.calls("/crm/v3/objects/companies/search")
    assert [s.body.get("after") for s in searches] == [None, "2", "4"]
    assert batch.cursor == "2026-03-14T09:00:00+00:00"


def test_an_incremental_fetch_with_nothing_changed_keeps_the_cursor(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [company("101", "Ridgeline Builders", "ridgeline.example", modified=BEFORE)]

    batch = connected.fetch(CURSOR)

    assert batch.accounts == [] and batch.problems == []
    assert batch.cursor == CURSOR


def test_a_search_longer_than_one_window_starts_again_from_the_latest_change_seen(
    hubspot: FakeHubSpot,
) -> None:
    hubspot.search_window = 4  # as HubSpot refuses to page past 10,000
    hubspot.companies = [
        company(str(100 + n), f"Company {n}", f"c{n}.example", modified=f"2026-03-1{n}T09:00:00Z")
        for n in range(7)
    ]
    connected = Connected(hubspot, page_size=2, search_window=4)

    batch = connected.fetch(CURSOR)

    assert sorted(a.name for a in batch.accounts) == [f"Company {n}" for n in range(7)]
    assert len({a.crm_id for a in batch.accounts}) == 7  # one seen twice is kept once
    searches = hubspot.calls("/crm/v3/objects/companies/search")
    restarted = searches[2].body["filterGroups"][0]["filters"][0]["value"]
    assert restarted == str(int(datetime(2026, 3, 13, 9, tzinfo=UTC).timestamp() * 1000))
    connected.http.close()


def test_a_tier_arbot_does_not_know_is_a_problem_and_the_rest_of_the_company_is_kept(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [
        company("101", "Ridgeline Builders", "ridgeline.example", arbot_tier="Gold", owner="71"),
        company("102", "Harbor Clinic", "harborclinic.example", arbot_tier="standard"),
    ]
    hubspot.owners = {"71": owner("71", "dana@seller.example", "Dana", "Reyes")}

    batch = connected.fetch()

    ridgeline = _by_name(batch)["Ridgeline Builders"]
    assert ridgeline.tier is None
    assert ridgeline.owner_email == "dana@seller.example"
    assert ridgeline.domains == ("ridgeline.example",)
    assert _by_name(batch)["Harbor Clinic"].tier == "standard"
    assert [(p.kind, p.external_id, p.message) for p in batch.problems] == [
        (
            "customer",
            "101",
            "HubSpot company Ridgeline Builders (id 101): arbot_tier 'Gold' is not a tier arbot "
            "knows (strategic, standard, transactional); the tier was left as it was",
        )
    ]


def test_malformed_records_are_reported_by_name_and_field_and_the_rest_comes_through(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    hubspot.companies.insert(2, company("110", None, "nameless.example"))
    hubspot.companies.append(company("111", "Odd Domain", "not a domain"))
    hubspot.contacts["203"] = contact(
        "203", "Ines", "Cole", "ines@harborclinic.example", "12", jobtitle="Billing"
    )
    hubspot.contacts["204"] = contact("204", "Jo", "Diaz", "jo@@odd", jobtitle="Billing")
    hubspot.associations["111"] = [("204", None)]

    batch = connected.fetch()

    assert [a.crm_id for a in batch.accounts] == ["101", "102", "103", "104", "105", "111"]
    assert _by_name(batch)["Harbor Clinic"].billing_contact == ContactRecord(
        "Ines Cole", "ines@harborclinic.example", None, None, None
    )
    assert _by_name(batch)["Odd Domain"].domains == ()
    assert _by_name(batch)["Odd Domain"].billing_contact is None
    messages = {p.external_id: p.message for p in batch.problems}
    assert messages["110"] == (
        "HubSpot company 110: name is empty; give the company a name in HubSpot"
    )
    assert messages["102"].startswith(
        "HubSpot company Harbor Clinic (id 102): contact Ines Cole (id 203): phone '12' is not"
    )
    odd = [p.message for p in batch.problems if p.external_id == "111"]
    assert odd[0] == (
        "HubSpot company Odd Domain (id 111): domain 'not a domain' is not a domain name"
    )
    assert odd[1].startswith(
        "HubSpot company Odd Domain (id 111): contact Jo Diaz (id 204), who handles billing: "
        "email 'jo@@odd' is not a valid email address"
    )


def test_a_rate_limit_is_waited_out_for_as_long_as_retry_after_says(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    hubspot.retry_after = "7"

    batch = connected.fetch()

    assert connected.sleeps == [7.0]
    assert len(batch.accounts) == 5
    first, second = hubspot.requests[:2]
    assert (first.path, first.query) == (second.path, second.query)  # the same page again


def test_a_retry_after_date_is_read_against_the_answers_own_date(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    asked = int(time.time())
    hubspot.retry_after = formatdate(asked + 30, usegmt=True)

    connected.fetch()

    answered = int(time.time())  # the answer's Date (whole seconds) is from `asked` to this
    (wait,) = connected.sleeps
    assert 30 - (answered - asked) <= wait <= 30  # 29 or 30 on a quick machine, less on a slow one


def test_a_rate_limit_without_retry_after_waits_out_hubspots_window(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    hubspot.rate_limit_window = True

    batch = connected.fetch()

    assert connected.sleeps == [10.0]  # X-HubSpot-RateLimit-Interval-Milliseconds: 10000
    assert len(batch.accounts) == 5


def test_a_rate_limit_longer_than_the_cap_ends_the_fetch_saying_when_to_retry(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    hubspot.retry_after = "900"

    with pytest.raises(SourceUnavailable, match="rate limiting arbot for 900 s more"):
        connected.fetch()
    assert connected.sleeps == []


def test_server_errors_are_retried_twice_then_reported(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)
    hubspot.server_errors = 2

    assert len(connected.fetch().accounts) == 5
    assert connected.sleeps == [1.0, 2.0]

    hubspot.server_errors = 3
    with pytest.raises(SourceUnavailable, match=r"HubSpot answered 502 .* try again later"):
        connected.fetch()


@pytest.mark.parametrize("refusal", ["expired", "invalid"])
def test_a_refused_token_is_an_error_that_names_hubspot_token(
    hubspot: FakeHubSpot, connected: Connected, refusal: str
) -> None:
    _five_companies(hubspot)
    hubspot.token_refused = refusal

    with pytest.raises(CrmTokenRejected) as raised:
        connected.fetch()

    assert isinstance(raised.value, UserError)
    message = str(raised.value)
    assert message.startswith("HubSpot refused the token in HUBSPOT_TOKEN (")
    assert "set HUBSPOT_TOKEN to a valid token" in message
    assert ("expired" in message) == (refusal == "expired")
    assert len(hubspot.requests) == 1  # a refused token is not tried again


def test_an_empty_token_is_refused_before_any_request(hubspot: FakeHubSpot) -> None:
    with pytest.raises(UserError, match="HUBSPOT_TOKEN is empty"):
        HubSpotSource(None, "", api_url=hubspot.url)
    assert hubspot.requests == []


def test_log_activity_adds_a_note_to_the_companys_timeline(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    _five_companies(hubspot)

    connected.source.log_activity("101", "2026-03-16: arbot sent the reminder 'first' by email <1>")

    (call,) = hubspot.calls("/crm/v3/objects/notes", "POST")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.body == {
        "properties": {
            "hs_timestamp": "2026-03-16T14:00:00.000Z",
            "hs_note_body": "2026-03-16: arbot sent the reminder 'first' by email &lt;1&gt;",
        },
        "associations": [
            {
                "to": {"id": "101"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}],
            }
        ],
    }
    assert len(hubspot.notes) == 1


def test_a_note_hubspot_refuses_is_a_source_error(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    with pytest.raises(SourceError, match=r"HubSpot refused POST /crm/v3/objects/notes with 400"):
        connected.source.log_activity("999", "a note")


def test_a_note_refused_for_a_missing_scope_names_the_contacts_write_scope(
    hubspot: FakeHubSpot, connected: Connected
) -> None:
    hubspot.companies = [company("101", "Ridgeline Builders", "ridgeline.example")]
    # The scopes the token hint once advised: companies.write does not let a note be created.
    hubspot.granted = {
        "crm.objects.companies.read",
        "crm.objects.contacts.read",
        "crm.objects.owners.read",
        "crm.objects.companies.write",
    }

    with pytest.raises(CrmTokenRejected) as refused:
        connected.source.log_activity("101", "a note")

    message = str(refused.value)
    assert "lacks the scope crm.objects.contacts.write" in message
    assert "HUBSPOT_TOKEN" in message and "Service keys" in message
    assert "companies.write" not in message
    assert hubspot.notes == []

    hubspot.granted |= {"crm.objects.contacts.write"}
    connected.source.log_activity("101", "a note")
    assert len(hubspot.notes) == 1
