"""A ledger source's own language field: FreshBooks' client `language` (RFC 5646)."""

from __future__ import annotations

from bot.core.clock import FixedClock
from tests.integrations.test_freshbooks import Connected, freshbooks  # noqa: F401
from tests.support.fake_freshbooks import FakeFreshBooks, client, invoice


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
