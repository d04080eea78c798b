"""Contacts of a ledger import: consent to texts is given for a phone number, so a contact whose
number the ledger changes keeps none of the old number's consent, whatever the source; a bounce
mark is an address's, so a new address clears it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Contact, Event, Reminder
from bot.ledger.upsert import apply_batch
from integrations.base.ledger import ContactRecord, CustomerRecord, LedgerBatch
from tests.support.ledger_files import row, write

TEXTED = {
    "tier": "transactional",  # due today: a text first, approved by itself
    "issue_date": "2026-01-01",
    "due_date": "2026-03-16",
}
LATER = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
NEW_PHONE = "+13125550177"


def _withdrawals(session: Session) -> list[dict[str, Any]]:
    return [
        event.payload
        for event in session.scalars(
            select(Event).where(Event.kind == "contact.sms_consent_withdrawn").order_by(Event.id)
        )
    ]


def test_a_new_phone_number_drops_the_old_numbers_consent_and_cancels_the_waiting_text(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**TEXTED)]))).code == 0
    assert cli("plan").code == 0
    session.rollback()
    given_at = session.scalars(select(Contact.sms_consent_at)).one()
    assert session.scalars(select(Reminder.channel)).one() == "sms"

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the same person (same email) with another number, and nothing said about consent
    moved = write(tmp_path / "b.csv", [row(**TEXTED, phone=NEW_PHONE, sms_consent="")])
    assert cli("import-csv", str(moved)).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (
        contact.phone,
        contact.sms_consent,
        contact.sms_consent_at,
        contact.sms_consent_source,
    ) == (NEW_PHONE, False, LATER, "b.csv, new phone")
    reminder = session.scalars(select(Reminder)).one()
    assert (reminder.state, reminder.cancel_reason) == ("cancelled", "no_sms_consent")
    assert _withdrawals(session) == [
        {
            "contact": contact.id,
            "source": "b.csv, new phone",
            "consent_given_at": given_at.isoformat(),  # type: ignore[union-attr]
            "consent_source": "a.csv row 2",
            "reason": "phone_changed",
        }
    ]
    # the new number stays without consent until a row gives it
    moved.write_bytes(moved.read_bytes() + b"\r\n")  # not the same bytes: read in full
    assert "nothing changed" in cli("import-csv", str(moved)).stdout


def test_a_new_phone_number_with_a_yes_on_its_row_has_consent_of_its_own_and_a_stop_stays(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    # the old number said STOP, then came back undeliverable
    session.execute(
        update(Contact).values(
            sms_opted_out_at=datetime(2026, 3, 10, tzinfo=UTC),
            sms_unusable_at=datetime(2026, 3, 12, tzinfo=UTC),
        )
    )
    session.commit()

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    moved = [row(phone=NEW_PHONE, sms_consent="true")]
    assert cli("import-csv", str(write(tmp_path / "b.csv", moved))).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (
        contact.phone,
        contact.sms_consent,
        contact.sms_consent_at,
        contact.sms_consent_source,
    ) == (NEW_PHONE, True, LATER, "b.csv row 2")
    assert contact.sms_unusable_at is None  # that was the old number
    # a person who texted STOP stays opted out until they text START
    assert contact.sms_opted_out_at == datetime(2026, 3, 10, tzinfo=UTC)
    assert _withdrawals(session) == []


def test_an_accounting_sync_that_changes_the_number_drops_its_consent_too(
    runtime: Any,
) -> None:
    def batch(phone: str) -> LedgerBatch:
        # QuickBooks, Xero and FreshBooks record no consent to texts: None
        contact = ContactRecord("Maria Garcia", "ap@ridgeline.example", phone, None, None)
        customer = CustomerRecord("58", "Ridgeline Roofing", contacts=[contact])
        return LedgerBatch("quickbooks", "QuickBooks company 9130", customers={"58": customer})

    with runtime.writing() as session:
        apply_batch(session, batch("+13125550142"), runtime.clock.now())
        session.execute(
            update(Contact).values(
                sms_consent=True, sms_consent_at=runtime.clock.now(), sms_consent_source="by hand"
            )
        )
    with runtime.writing() as session:
        summary = apply_batch(session, batch(NEW_PHONE), LATER)
    assert summary.contacts_updated == 1
    with runtime.sessions() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.phone, contact.sms_consent, contact.sms_consent_source) == (
            NEW_PHONE,
            False,
            "QuickBooks company 9130, new phone",
        )
        assert [(p["consent_source"], p["reason"]) for p in _withdrawals(session)] == [
            ("by hand", "phone_changed")
        ]


def test_an_email_address_given_to_a_contact_clears_the_bounce_mark_and_keeps_an_opt_out(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a contact known by phone only, whose email was marked bouncing and who opted out of email
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(email="")]))).code == 0
    opted_out_at = datetime(2026, 3, 10, tzinfo=UTC)
    session.execute(
        update(Contact).values(
            email_opted_out_at=opted_out_at, email_unusable_at=datetime(2026, 3, 12, tzinfo=UTC)
        )
    )
    session.commit()

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the same person (same phone) now with an address
    assert cli("import-csv", str(write(tmp_path / "b.csv", [row()]))).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.updated_at) == ("ap@ridgeline.example", LATER)
    assert contact.email_unusable_at is None  # that was the old address's
    # a person who opted out of email stays out until they opt in again
    assert contact.email_opted_out_at == opted_out_at


def test_an_email_address_whose_case_alone_changes_keeps_its_bounce_mark(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    bounced_at = datetime(2026, 3, 12, tzinfo=UTC)
    session.execute(update(Contact).values(email_unusable_at=bounced_at))
    session.commit()

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the same address (matched as one): the mark is still its own
    assert (
        cli("import-csv", str(write(tmp_path / "b.csv", [row(email="AP@ridgeline.example")]))).code
        == 0
    )
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.email_unusable_at) == ("AP@ridgeline.example", bounced_at)
