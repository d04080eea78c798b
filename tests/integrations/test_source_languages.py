"""A source's own language field, where its API has one: FreshBooks' client `language`
(RFC 5646) and HubSpot's contact property `hs_language` ("Preferred language")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.core.clock import FixedClock
from tests.integrations.test_freshbooks import Connected, freshbooks  # noqa: F401
from tests.integrations.test_hubspot import Connected as HubSpotConnected
from tests.integrations.test_hubspot import hubspot  # noqa: F401
from tests.support.fake_freshbooks import FakeFreshBooks, client, invoice
from tests.support.fake_hubspot import FakeHubSpot, company, contact


@pytest.fixture
def hubspot_connected(hubspot: FakeHubSpot) -> Iterator[HubSpotConnected]:  # noqa: F811
    source = HubSpotConnected(hubspot)
    yield source
    source.http.close()


def test_a_freshbooks_clients_language_is_read_and_an_unknown_one_is_named(
    freshbooks: FakeFreshBooks,  # noqa: F811
    clock: FixedClock,
) -> None:
    freshbooks.clients = [
        client(1, "Clínica Dental Sol", email="pagos@sol.example", language="es"),
        client(2, "Atelier Lumière", email="compta@lumiere.example", language="fr_CA"),
        client(3, "Odd Ltd", email="ap@odd.example", language="klingon"),
    ]
    freshbooks.invoices = [invoice(100 + n, n, f"000{n}", "100.00", "100.00") for n in (1, 2, 3)]
    batch = Connected(freshbooks, clock).fetch()

    languages = {key: c.language for key, c in batch.customers.items()}
    assert languages == {"1": "es", "2": "fr-CA", "3": None}
    assert batch.customers["1"].contacts[0].language == "es"
    assert [p.message for p in batch.problems] == [
        "client Odd Ltd: language 'klingon' is not a language tag; use a short tag such as es, "
        "fr, de or fr-CA"
    ]


def test_a_hubspot_billing_contacts_preferred_language_comes_with_it(
    hubspot: FakeHubSpot,  # noqa: F811
    hubspot_connected: HubSpotConnected,
) -> None:
    hubspot.companies = [company("101", "Sol", "sol.example"), company("102", "Odd", "odd.example")]
    hubspot.contacts = {
        "201": contact("201", "Ana", "Ruiz", "ana@sol.example", jobtitle="Accounts Payable"),
        "202": contact("202", "Bo", "Li", "bo@odd.example", jobtitle="Accounts Payable"),
    }
    hubspot.contacts["201"]["properties"]["hs_language"] = "es-mx"
    hubspot.contacts["202"]["properties"]["hs_language"] = "elvish"
    hubspot.associations = {"101": [("201", None)], "102": [("202", None)]}

    batch = hubspot_connected.fetch()

    chosen = {a.name: a.billing_contact for a in batch.accounts if a.billing_contact}
    assert chosen["Sol"].language == "es-MX"
    assert chosen["Odd"].language is None
    assert any("language 'elvish' is not a language tag" in p.message for p in batch.problems)
    read = hubspot.calls("/crm/v3/objects/contacts/batch/read", "POST")
    assert read and "hs_language" in str(read[0].body)
