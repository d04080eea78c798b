"""Pipedrive as a CRM source, against the local fake of API v2: a full fetch across cursor pages
with persons read in pages (a few requests for 620 organizations), an incremental one through
`updated_since` (a person's change brings its organization), custom fields by hash key or name,
owners, domains, the billing contact, malformed organizations, rate limits, server errors, a
refused token, and notes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.core.errors import UserError
from integrations.base.ledger import ContactRecord, CrmAccount, CrmBatch
from integrations.crm_http import CrmTokenRejected
from integrations.errors import SourceError, SourceUnavailable
from integrations.pipedrive import PipedriveSource
from tests.support.fake_http import local_client
from tests.support.fake_pipedrive import (
    ID_KEY,
    TAGS_KEY,
    TIER_KEY,
    TOKEN,
    FakePipedrive,
    organization,
    person,
    user,
)
from tests.support.slack_requests import PATIENCE

CURSOR = "2026-03-05T00:00:00+00:00"
DANA = user(11, "Dana Reyes", "Dana.Reyes@Seller.example")
SAM = user(12, "Sam Okafor", "sam@seller.example")


@pytest.fixture
def pipedrive() -> Iterator[FakePipedrive]:
    fake = FakePipedrive().start()
    yield fake
    fake.stop()


class Connected:
    """A PipedriveSource on the fake, and the waits it asked for."""

    def __init__(self, fake: FakePipedrive, token: str = TOKEN, **options: object) -> None:
        self.sleeps: list[float] = []
        self.http = local_client(timeout=PATIENCE)
        settings: dict[str, object] = {"tier_property": TIER_KEY, "tags_property": TAGS_KEY}
        self.source = PipedriveSource(
            self.http,
            token,
            api_url=fake.url,
            id_property=ID_KEY,
            sleep=self.sleeps.append,
            page_size=2,
            **{**settings, **options},  # type: ignore[arg-type]
        )

    def fetch(self, cursor: str | None = None) -> CrmBatch:
        return self.source.fetch_accounts(cursor)


@pytest.fixture
def connected(pipedrive: FakePipedrive) -> Iterator[Connected]:
    source = Connected(pipedrive)
    yield source
    source.http.close()


def _by_name(batch: CrmBatch) -> dict[str, CrmAccount]:
    return {account.name: account for account in batch.accounts}


def _five_organizations(fake: FakePipedrive) -> None:
    fake.users = {11: DANA, 12: SAM}
    fake.organizations = [
        organization(
            101,
            "Ridgeline Builders",
            DANA,
            website="https://www.ridgeline.example/contact",
            tier="Strategic",
            tags=("construction", "net-60"),
            customer_id="CUST-001",
        ),
        organization(102, "Harbor Clinic", SAM, update_time="2026-03-10 08:00:00"),
        organization(103, "Pinecrest Agency", DANA, tier="Standard"),
        organization(104, "Lumen Dental", None, tier="Transactional"),
        organization(105, "Bayside Supply", SAM, tags=("wholesale",)),
    ]
    fake.persons = [
        person(201, 101, "Mara Vance", ["mara@ridgeline.example"], job_title="CEO"),
        person(
            202,
            101,
            "Theo Park",
            ["theo.park@gmail.com", "AP@Ridgeline.example"],
            ["(415) 555-0142"],
            job_title="Accounts Payable",
            primary_email=1,
        ),
        person(203, 102, "Ines Cole", ["ines@gmail.com", "ines@harborclinic.example"]),
        person(204, 102, "Raj Mehta", ["raj@harbor-clinic.example"], ["+44 20 7946 0958"]),
    ]


def test_a_full_fetch_reads_every_organization_across_pages(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)

    batch = connected.fetch()

    assert batch.source == "pipedrive"
    assert batch.problems == []
    assert [a.crm_id for a in batch.accounts] == ["101", "102", "103", "104", "105"]
    assert _by_name(batch)["Ridgeline Builders"] == CrmAccount(
        crm_id="101",
        name="Ridgeline Builders",
        domains=("ridgeline.example",),
        external_id="CUST-001",
        tier="strategic",  # the option's label, from the option id Pipedrive stores
        owner_email="dana.reyes@seller.example",
        billing_contact=ContactRecord(
            "Theo Park", "AP@ridgeline.example", "+14155550142", None, None
        ),
        tags=("construction", "net-60"),
    )
    assert _by_name(batch)["Lumen Dental"].tier == "transactional"
    assert _by_name(batch)["Lumen Dental"].owner_email is None
    assert _by_name(batch)["Bayside Supply"].tags == ("wholesale",)
    assert _by_name(batch)["Bayside Supply"].billing_contact is None
    pages = pipedrive.calls("/api/v2/organizations")
    assert [(p.query.get("cursor"), p.query["sort_by"], p.query["limit"]) for p in pages] == [
        (None, "id", "2"),
        ("Mg==", "id", "2"),  # the opaque cursor Pipedrive handed back
        ("NA==", "id", "2"),
    ]
    # The token goes in a header, never in a URL that a log could keep.
    assert all(r.headers["x-api-token"] == TOKEN for r in pipedrive.requests)
    assert all("api_token" not in r.query for r in pipedrive.requests)
    # Persons are read in pages, not one request per organization; nothing of the old v1 lists.
    assert len(pipedrive.calls("/api/v2/persons")) == 2
    assert all("org_id" not in r.query for r in pipedrive.calls("/api/v2/persons"))
    assert not [r for r in pipedrive.requests if r.path.startswith("/v1/organizations")]
    assert len(pipedrive.calls("/v1/users")) == 1
    assert batch.cursor == "2026-03-10T08:00:00+00:00"


def test_without_a_website_the_domains_are_those_of_its_peoples_work_addresses(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)

    harbor = _by_name(connected.fetch())["Harbor Clinic"]

    # Primary addresses only; a free-mail provider's domain says nothing about the company.
    assert harbor.domains == ("harbor-clinic.example",)
    # Nobody's title says billing: nobody is taken as the billing contact.
    assert harbor.billing_contact is None


def test_owners_are_read_once_per_fetch(pipedrive: FakePipedrive, connected: Connected) -> None:
    pipedrive.users = {11: DANA}
    pipedrive.organizations = [
        organization(101, "Ridgeline Builders", 11),
        organization(102, "Harbor Clinic", 11),
        organization(103, "Pinecrest Agency", 19),
    ]

    batch = connected.fetch()

    emails = {a.name: a.owner_email for a in batch.accounts}
    assert emails == {
        "Ridgeline Builders": "dana.reyes@seller.example",
        "Harbor Clinic": "dana.reyes@seller.example",
        "Pinecrest Agency": None,
    }
    assert len(pipedrive.calls("/v1/users")) == 1


def test_an_incremental_fetch_asks_only_for_what_changed_since_the_cursor(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    pipedrive.organizations = [
        organization(101, "Ridgeline Builders", update_time="2026-03-12 10:30:00"),
        organization(102, "Harbor Clinic", update_time="2026-03-01 09:00:00"),
        organization(103, "Pinecrest Agency", update_time="2026-03-06 16:45:10"),
        organization(104, "Lumen Dental", update_time="2026-02-20 09:00:00"),
        organization(105, "Bayside Supply", update_time="2026-02-10 09:00:00"),
        organization(106, "Cobalt Labs", update_time="2026-03-05 00:00:00"),  # at the cursor
    ]

    batch = connected.fetch(CURSOR)

    assert [a.name for a in batch.accounts] == [
        "Cobalt Labs",
        "Pinecrest Agency",
        "Ridgeline Builders",
    ]
    assert batch.cursor == "2026-03-12T10:30:00+00:00"
    for path in ("/api/v2/organizations", "/api/v2/persons"):
        first = pipedrive.calls(path)[0]
        assert first.query["updated_since"] == "2026-03-05T00:00:00Z"
        assert first.query["sort_by"] == "update_time"


def test_a_person_changed_since_the_cursor_brings_its_organization_and_its_people(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    pipedrive.organizations = [
        organization(101, "Ridgeline Builders", update_time="2026-02-01 09:00:00"),
        organization(102, "Harbor Clinic", update_time="2026-02-01 09:00:00"),
    ]
    pipedrive.persons = [
        person(201, 101, "Mara Vance", ["mara@ridgeline.example"], job_title="CEO"),
        person(
            202,
            101,
            "Theo Park",
            ["ap@ridgeline.example"],
            job_title="Accounts Payable",
            update_time="2026-03-09 12:00:00",
        ),
    ]

    batch = connected.fetch(CURSOR)

    [ridgeline] = batch.accounts
    assert ridgeline.name == "Ridgeline Builders"
    assert ridgeline.billing_contact is not None
    assert ridgeline.billing_contact.email == "ap@ridgeline.example"
    assert batch.cursor == "2026-03-09T12:00:00+00:00"
    assert pipedrive.calls("/api/v2/organizations")[-1].query["ids"] == "101"
    assert pipedrive.calls("/api/v2/persons")[-1].query["org_id"] == "101"


def test_a_first_sync_of_620_organizations_takes_a_handful_of_requests(
    pipedrive: FakePipedrive,
) -> None:
    pipedrive.users = {11: DANA}
    pipedrive.organizations = [
        organization(1000 + n, f"Company {n}", 11, website=f"company{n}.example")
        for n in range(620)
    ]
    pipedrive.persons = [
        person(5000 + n, 1000 + n // 2, f"Person {n}", [f"p{n}@company{n // 2}.example"])
        for n in range(1240)
    ]
    http = local_client(timeout=PATIENCE)
    source = PipedriveSource(http, TOKEN, api_url=pipedrive.url, id_property=ID_KEY)

    batch = source.fetch_accounts(None)
    http.close()

    assert len(batch.accounts) == 620
    # 2 pages of organizations, 3 of persons (500 a page), the fields, the users
    assert len(pipedrive.requests) == 7
    assert len(pipedrive.calls("/api/v2/organizations")) == 2
    assert len(pipedrive.calls("/api/v2/persons")) == 3


def test_an_incremental_fetch_with_nothing_changed_keeps_the_cursor(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    pipedrive.organizations = [organization(101, "Ridgeline Builders")]

    batch = connected.fetch(CURSOR)

    assert batch.accounts == [] and batch.problems == []
    assert batch.cursor == CURSOR


def test_custom_fields_are_found_by_name_when_the_setting_is_not_a_key(
    pipedrive: FakePipedrive,
) -> None:
    _five_organizations(pipedrive)
    connected = Connected(pipedrive, tier_property="arbot_tier", tags_property="AR tags")

    batch = connected.fetch()

    assert _by_name(batch)["Pinecrest Agency"].tier == "standard"
    assert _by_name(batch)["Ridgeline Builders"].tags == ("construction", "net-60")
    connected.http.close()


def test_a_tier_field_pipedrive_does_not_have_is_one_problem_naming_the_setting(
    pipedrive: FakePipedrive,
) -> None:
    _five_organizations(pipedrive)
    connected = Connected(pipedrive, tier_property="customer_tier")

    batch = connected.fetch()

    assert len(batch.accounts) == 5
    assert all(a.tier is None for a in batch.accounts)
    assert [(p.kind, p.message) for p in batch.problems] == [
        (
            "settings",
            "Pipedrive has no organization field 'customer_tier': set ARBOT_CRM_TIER_PROPERTY to "
            "the field's API key (Pipedrive: Company settings > Data fields)",
        )
    ]
    connected.http.close()


def test_a_tier_arbot_does_not_know_is_a_problem_and_the_rest_of_the_organization_is_kept(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    pipedrive.users = {11: DANA, 12: SAM}
    pipedrive.organizations = [
        organization(101, "Ridgeline Builders", DANA, website="ridgeline.example", tier="Gold"),
        organization(102, "Harbor Clinic", SAM, tier="Standard"),
    ]

    batch = connected.fetch()

    ridgeline = _by_name(batch)["Ridgeline Builders"]
    assert (ridgeline.tier, ridgeline.owner_email) == (None, "dana.reyes@seller.example")
    assert ridgeline.domains == ("ridgeline.example",)
    assert _by_name(batch)["Harbor Clinic"].tier == "standard"
    assert [(p.external_id, p.message) for p in batch.problems] == [
        (
            "101",
            "Pipedrive organization Ridgeline Builders (id 101): arbot tier 'Gold' is not a tier "
            "arbot knows (strategic, standard, transactional); the tier was left as it was",
        )
    ]


def test_malformed_records_are_reported_by_name_and_field_and_the_rest_comes_through(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)
    pipedrive.organizations.insert(2, organization(110, None))
    pipedrive.organizations.append(organization(111, "Odd Site", website="not a website"))
    pipedrive.persons.append(
        person(205, 111, "Jo Diaz", ["jo@odd.example"], ["12"], job_title="Billing")
    )

    batch = connected.fetch()

    assert [a.crm_id for a in batch.accounts] == ["101", "102", "103", "104", "105", "111"]
    odd = _by_name(batch)["Odd Site"]
    assert odd.domains == ("odd.example",)  # the website unusable: its people's domain
    assert odd.billing_contact == ContactRecord("Jo Diaz", "jo@odd.example", None, None, None)
    messages = [(p.external_id, p.message) for p in batch.problems]
    assert messages[0] == (
        "110",
        "Pipedrive organization 110: name is empty; give it a name in Pipedrive",
    )
    assert messages[1] == (
        "111",
        "Pipedrive organization Odd Site (id 111): website 'not a website' is not a domain name",
    )
    assert messages[2][1].startswith(
        "Pipedrive organization Odd Site (id 111): person Jo Diaz (id 205): phone '12' is not"
    )
    assert len(messages) == 3


def test_a_rate_limit_is_waited_out_until_pipedrive_says_it_resets(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)
    pipedrive.rate_limit_reset = "2"

    batch = connected.fetch()

    assert connected.sleeps == [2.0]
    assert len(batch.accounts) == 5


def test_retry_after_comes_before_pipedrives_reset_header(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)
    pipedrive.retry_after = "6"

    connected.fetch()

    assert connected.sleeps == [6.0]


def test_server_errors_are_retried_twice_then_reported(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)
    pipedrive.server_errors = 2

    assert len(connected.fetch().accounts) == 5
    assert connected.sleeps == [1.0, 2.0]

    pipedrive.server_errors = 3
    with pytest.raises(SourceUnavailable, match=r"Pipedrive answered 503 .* try again later"):
        connected.fetch()


def test_a_refused_token_is_an_error_that_names_pipedrive_token(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    pipedrive.token_refused = True

    with pytest.raises(CrmTokenRejected) as raised:
        connected.fetch()

    assert isinstance(raised.value, UserError)
    assert str(raised.value) == (
        "Pipedrive refused the token in PIPEDRIVE_TOKEN (unauthorized access): set "
        "PIPEDRIVE_TOKEN to a valid token; copy the API token of a Pipedrive user who sees "
        "every organization (Pipedrive: Settings > Personal preferences > API)"
    )
    assert len(pipedrive.requests) == 1


def test_log_activity_adds_a_note_to_the_organization(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    _five_organizations(pipedrive)

    connected.source.log_activity("101", "2026-03-16: arbot sent the reminder 'first' by email")

    (call,) = pipedrive.calls("/v1/notes", "POST")
    assert call.headers["x-api-token"] == TOKEN
    assert call.body == {
        "content": "2026-03-16: arbot sent the reminder 'first' by email",
        "org_id": 101,
    }
    assert pipedrive.notes[0]["org_id"] == 101


def test_a_note_pipedrive_refuses_is_a_source_error(
    pipedrive: FakePipedrive, connected: Connected
) -> None:
    with pytest.raises(SourceError, match="Pipedrive refused POST /v1/notes with 400"):
        connected.source.log_activity("999", "a note")
    with pytest.raises(SourceError, match="not a Pipedrive organization id"):
        connected.source.log_activity("abc", "a note")
