"""Two syncs of one CRM at once: the second is refused while the first reads and writes, so what
the first read (perhaps older) never overwrites what the second would have written, and the two
never queue the same note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Customer, Event
from bot.core.runtime import start
from bot.core.settings import load_settings
from bot.ledger.sync import sync_crm
from integrations.base.ledger import CrmBatch
from integrations.wiring import crm_openers
from tests.bot.ledger import test_crm_sync
from tests.support.fake_hubspot import FakeHubSpot, company
from tests.support.ledger_files import row, write

hubspot = test_crm_sync.hubspot  # the HubSpot fake, with HUBSPOT_TOKEN and its URL set


def test_a_crm_sync_run_while_another_reads_is_refused_and_an_older_tier_never_comes_back(
    cli: Any, hubspot: FakeHubSpot, tmp_path: Path, database_url: str
) -> None:
    ledger = write(tmp_path / "l.csv", [row(invoice_number="INV-1", email="ap@ridgeline.example")])
    assert cli("import-csv", str(ledger)).code == 0
    hubspot.companies = [
        company("901", "Ridgeline Roofing", "ridgeline.example", arbot_tier="transactional")
    ]
    assert cli("sync").code == 0
    runtime = start(load_settings(env_file=None, database_url=database_url), upgrade=False)
    meanwhile: dict[str, Any] = {}
    try:
        with crm_openers(runtime.settings)["hubspot"]() as real:

            class ReadsSlowly:
                """HubSpot, read by the scheduler's sync while someone makes the customer
                strategic there and runs `arbot sync` before that read is written."""

                name = "hubspot"

                def fetch_accounts(self, cursor: str | None) -> CrmBatch:
                    batch = real.fetch_accounts(cursor)
                    hubspot.companies = [
                        company(
                            "901", "Ridgeline Roofing", "ridgeline.example",
                            modified="2026-03-02T17:00:00.000Z", arbot_tier="strategic",
                        )
                    ]  # fmt: skip
                    meanwhile["sync"] = cli("sync")
                    return batch

                def log_activity(self, crm_id: str, note: str) -> str | None:
                    return real.log_activity(crm_id, note)

            sync_crm(runtime, ReadsSlowly(), log_activity=False)

        refused = meanwhile["sync"]
        assert refused.code == 1
        assert "another sync of hubspot is running" in refused.stderr

        def tiers() -> list[Any]:
            with runtime.sessions() as session:
                events = session.scalars(
                    select(Event).where(Event.kind == "customer.crm_updated").order_by(Event.id)
                )
                return [
                    event.payload["changes"]["tier"][1]
                    for event in events
                    if "tier" in event.payload["changes"]
                ]

        assert tiers() == ["transactional"]  # no strategic written, then taken back

        again = cli("sync")  # once the first has ended, the change comes in
        assert again.code == 0, again.stderr
        with runtime.sessions() as session:
            assert session.scalars(select(Customer.tier)).one() == "strategic"
        assert tiers() == ["transactional", "strategic"]
    finally:
        runtime.close()
