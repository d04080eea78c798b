"""`arbot sync` with a CRM, end to end against the local HubSpot fake: a customer the CRM moves to
`strategic` gets the strategic ladder on the next morning's plan, and a conflict is listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_hubspot import TOKEN, FakeHubSpot, company, owner
from tests.support.ledger_files import row, write


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_API_URL", fake.url)
    monkeypatch.setenv("ARBOT_OWNER_EMAILS", "U0SAM=sam@brightwater.example")
    yield fake
    fake.stop()


def _plan(cli: Any, day: str) -> dict[str, Any]:
    result = cli("plan", "--date", day, "--dry-run", "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_tier_set_in_the_crm_changes_the_next_mornings_plan(
    cli: Any, hubspot: FakeHubSpot, tmp_path: Path
) -> None:
    # Due 2026-03-07: on 2026-03-17 it is 10 days late. Standard ladder: the +7 reminder;
    # strategic ladder: the +10 owner call, a person instead of a message.
    ledger = write(
        tmp_path / "l.csv",
        [row(invoice_number="INV-1", due_date="2026-03-07", email="ap@ridgeline.example")],
    )
    assert cli("import-csv", str(ledger)).code == 0
    before = _plan(cli, "2026-03-17")
    assert [(r["action"], r["step"]) for r in before["reminders"]] == [("remind", "plus7")]

    hubspot.owners = {"31": owner("31", "sam@brightwater.example", "Sam", "Lee")}
    hubspot.companies = [
        company(
            "901", "Ridgeline Roofing", "ridgeline.example", owner="31", arbot_tier="strategic"
        ),
        company("902", "Somebody Else", "else.example", arbot_tier="platinum"),
    ]

    synced = cli("sync")

    assert synced.code == 0, synced.stderr
    assert "hubspot: 1 account(s) matched, 1 customer(s) updated" in synced.stdout
    assert "platinum" in synced.stderr  # not a tier: reported, nothing guessed
    after = _plan(cli, "2026-03-17")
    assert [(r["action"], r["step"]) for r in after["reminders"]] == [("escalate", "owner_call")]
    assert after["reminders"][0]["escalate_to"] == "U0SAM"  # the owner the CRM named
    status = json.loads(cli("status", "C-1", "--json").stdout)
    assert status["customer"]["tier"] == "strategic"


def test_sent_reminders_are_written_to_the_crm_company_once(
    cli: Any,
    hubspot: FakeHubSpot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    from sqlalchemy import select

    from bot.core.models import Customer, Event
    from bot.core.runtime import start
    from bot.core.settings import load_settings

    monkeypatch.setenv("ARBOT_CRM_LOG_ACTIVITY", "true")
    ledger = write(tmp_path / "l.csv", [row(invoice_number="INV-1", email="ap@ridgeline.example")])
    assert cli("import-csv", str(ledger)).code == 0
    hubspot.companies = [company("901", "Ridgeline Roofing", "ridgeline.example")]
    assert cli("sync").code == 0  # matched: the customer now knows its CRM company
    runtime = start(load_settings(env_file=None, database_url=database_url), upgrade=False)
    try:
        with runtime.writing() as session:
            customer = session.scalars(select(Customer)).one()
            assert customer.crm_ref == "hubspot:901"
            session.add(
                Event(
                    at=runtime.clock.now(),
                    actor="system",
                    kind="escalation.opened",
                    customer_id=customer.id,
                    payload={"reason": "reply: dispute"},
                )
            )
    finally:
        runtime.close()

    assert cli("sync").code == 0
    assert cli("sync").code == 0  # nothing new: no second note

    assert len(hubspot.notes) == 1
    assert "handed the account to a person (reply: dispute)" in json.dumps(hubspot.notes[0])
