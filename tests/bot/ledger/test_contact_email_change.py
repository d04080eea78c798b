"""A ledger import that gives a known contact another email address: the ledger is the source of
truth, so the contact moves to the new address (as it does to a new phone number). What waits to
be emailed to the old address is cancelled (it was approved for that address), an Event says
what changed, and the old address's marks stay with it: its bounce does not block the new address,
its opt-out is not carried to it (RULES A7: an opt-out is an address's), and both come back if
the ledger gives that address again. Several contacts of one customer stay several."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Contact, Event, Reminder
from bot.ledger.change_words import ledger_change
from bot.ledger.upsert import apply_batch
from integrations.base.ledger import ContactRecord, CustomerRecord, LedgerBatch
from tests.support.ledger_files import row, write

A_WEEK_LATE = {"issue_date": "2026-01-01", "due_date": "2026-03-09"}  # +7 on 2026-03-16, by email
OLD = "ap@ridgeline.example"
NEW = "billing@ridgeline.example"
LATER = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
NEXT_WEEK = "2026-03-23T14:00:00+00:00"  # the +14 step


def _plan(cli: Any) -> dict[str, Any]:
    result = cli("plan", "--json")
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def _address_changes(session: Session) -> list[dict[str, Any]]:
    return [
        event.payload
        for event in session.scalars(
            select(Event).where(Event.kind == "contact.email_changed").order_by(Event.id)
        )
    ]


@pytest.mark.parametrize("waiting", ["planned", "approved"])
def test_a_new_address_moves_the_contact_cancels_what_waits_for_the_old_one_and_is_written_to(
    cli: Any,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    waiting: str,
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**A_WEEK_LATE)]))).code == 0
    assert [r["contact"] for r in _plan(cli)["reminders"]] == [OLD]
    session.rollback()
    bounced_at = datetime(2026, 3, 12, tzinfo=UTC)
    session.execute(update(Contact).values(email_unusable_at=bounced_at))
    session.execute(update(Reminder).values(state=waiting))
    session.commit()

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the same person (same name and phone) at the address the ledger now has for the customer
    moved = write(tmp_path / "b.csv", [row(**A_WEEK_LATE, email=NEW)])
    result = cli("import-csv", str(moved))
    assert result.code == 0, result.stderr
    assert "0 contacts added, 1 updated" in result.stdout
    session.rollback()
    contact = session.scalars(select(Contact)).one()  # moved, not a second contact
    assert (contact.email, contact.email_unusable_at, contact.updated_at) == (NEW, None, LATER)
    # the phone number did not change: its consent to texts stays
    assert (contact.phone, contact.sms_consent) == ("+13125550142", True)
    reminder = session.scalars(select(Reminder)).one()
    # it was written (and approved) for the old address: none of it goes to the new one
    assert (reminder.state, reminder.cancel_reason) == ("cancelled", "email_changed")
    assert _address_changes(session) == [
        {
            "contact": contact.id,
            "from": OLD,
            "to": NEW,
            "source": "b.csv",
            "matched_by": "phone",
            "email_opted_out_at": None,
            "email_unusable_at": bounced_at.isoformat(),
        }
    ]
    status = cli("status", "C-1")
    words = f"email address {OLD} → {NEW} (b.csv; {OLD} had bounced or reached the wrong person)"
    assert words in status.stdout
    assert f"Maria Garcia: {NEW}, +13125550142" in status.stdout
    assert OLD + "," not in status.stdout  # no second contact at the old address

    # the next step of the ladder goes to the new address
    monkeypatch.setenv("ARBOT_NOW", NEXT_WEEK)
    assert [(r["step"], r["contact"]) for r in _plan(cli)["reminders"]] == [("plus14", NEW)]
    moved.write_bytes(moved.read_bytes() + b"\r\n")  # not the same bytes: read in full
    assert "nothing changed" in cli("import-csv", str(moved)).stdout


def test_an_opt_out_stays_with_its_address_and_comes_back_when_the_ledger_gives_it_again(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_email_only = {**A_WEEK_LATE, "phone": "", "sms_consent": ""}
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**by_email_only)]))).code == 0
    opted_out_at = datetime(2026, 3, 10, tzinfo=UTC)
    session.execute(update(Contact).values(email_opted_out_at=opted_out_at))
    session.commit()
    assert [h["reason"] for h in _plan(cli)["held"]] == ["opted_out"]

    # another address and another name: the customer's only address has changed
    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    moved = [row(**by_email_only, email=NEW, contact_name="Accounts Payable")]
    assert cli("import-csv", str(write(tmp_path / "b.csv", moved))).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.name, contact.email_opted_out_at) == (
        NEW,
        "Accounts Payable",
        None,  # RULES A7: the opt-out was the old address's
    )
    assert [
        (change["from"], change["matched_by"], change["email_opted_out_at"])
        for change in _address_changes(session)
    ] == [(OLD, "only address", opted_out_at.isoformat())]
    assert f"{OLD} had opted out of email" in cli("status", "C-1").stdout
    assert [r["contact"] for r in _plan(cli)["reminders"]] == [NEW]
    session.rollback()

    # the ledger goes back to the old address (a correction): it is still opted out
    session.execute(update(Reminder).values(state="skipped"))
    session.commit()
    monkeypatch.setenv("ARBOT_NOW", NEXT_WEEK)
    assert cli("import-csv", str(write(tmp_path / "c.csv", [row(**by_email_only)]))).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.email_opted_out_at) == (OLD, opted_out_at)
    plan = _plan(cli)
    assert (plan["reminders"], [h["reason"] for h in plan["held"]]) == ([], ["opted_out"])


def test_several_contacts_of_a_customer_stay_several_and_only_the_one_whose_address_changed_moves(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maria = {"contact_name": "Maria Garcia", "email": OLD, "phone": "+13125550142"}
    john = {"contact_name": "John Okafor", "email": "john@ridgeline.example", "phone": ""}
    both = [
        row(**A_WEEK_LATE, **maria),
        row(**A_WEEK_LATE, **john, invoice_number="INV-2", sms_consent=""),
    ]
    assert cli("import-csv", str(write(tmp_path / "a.csv", both))).code == 0

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # a file naming only Maria changes nothing about John, who keeps his address
    only_maria = [row(**A_WEEK_LATE, **maria)]
    assert "nothing changed" in cli("import-csv", str(write(tmp_path / "b.csv", only_maria))).stdout
    # John's address changes (his name says it is him); Maria's does not
    john_moved = {**john, "email": "j.okafor@ridgeline.example"}
    changed = [
        row(**A_WEEK_LATE, **maria),
        row(**A_WEEK_LATE, **john_moved, invoice_number="INV-2", sms_consent=""),
    ]
    assert cli("import-csv", str(write(tmp_path / "c.csv", changed))).code == 0
    session.rollback()
    assert session.scalars(select(Contact.email).order_by(Contact.id)).all() == [
        OLD,
        "j.okafor@ridgeline.example",
    ]
    assert [(c["from"], c["matched_by"]) for c in _address_changes(session)] == [
        ("john@ridgeline.example", "name")
    ]
    # a third person next to both is a third contact
    peter = {"contact_name": "Peter Lind", "email": "peter@ridgeline.example", "phone": ""}
    three = [*changed, row(**A_WEEK_LATE, **peter, invoice_number="INV-3", sms_consent="")]
    assert cli("import-csv", str(write(tmp_path / "d.csv", three))).code == 0
    session.rollback()
    assert session.scalars(select(Contact.email).order_by(Contact.id)).all() == [
        OLD,
        "j.okafor@ridgeline.example",
        "peter@ridgeline.example",
    ]
    assert len(_address_changes(session)) == 1


def test_an_accounting_sync_that_changes_the_customers_address_moves_its_contact(
    runtime: Any,
) -> None:
    def batch(email: str) -> LedgerBatch:
        # QuickBooks gives a customer's addresses, no consent to texts
        contact = ContactRecord("Maria Garcia", email, None, None, None)
        customer = CustomerRecord("58", "Ridgeline Roofing", contacts=[contact])
        return LedgerBatch("quickbooks", "QuickBooks company 9130", customers={"58": customer})

    with runtime.writing() as session:
        apply_batch(session, batch(OLD), runtime.clock.now())
    with runtime.writing() as session:
        summary = apply_batch(session, batch(NEW), LATER)
    assert (summary.contacts_created, summary.contacts_updated) == (0, 1)
    with runtime.sessions() as session:
        assert session.scalars(select(Contact.email)).all() == [NEW]
        assert [(c["from"], c["to"], c["source"]) for c in _address_changes(session)] == [
            (OLD, NEW, "QuickBooks company 9130")
        ]


def test_the_words_of_a_move_name_both_addresses_and_the_old_ones_marks() -> None:
    payload = {
        "contact": 3,
        "from": OLD,
        "to": NEW,
        "source": "b.csv",
        "matched_by": "name",
        "email_opted_out_at": "2026-03-10T00:00:00+00:00",
        "email_unusable_at": "2026-03-12T00:00:00+00:00",
    }
    assert ledger_change("contact.email_changed", payload, str) == (
        f"email address {OLD} → {NEW} (b.csv; {OLD} had bounced or reached the wrong person "
        "and had opted out of email)"
    )
    assert (
        ledger_change("contact.email_changed", {"from": OLD, "to": NEW}, str)
        == f"email address {OLD} → {NEW}"
    )
