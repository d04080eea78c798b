"""A ledger import that gives a known contact another phone number: a reminder stores its contact,
not the number, so a text still waiting (planned, or approved by a person or the playbook) would go
to the new number although it was written and approved for the old one. It is cancelled, whether
or not consent to texts came with the new number (without it, as no consent: the old number's
consent does not carry over), and the phone change's Event says which texts it cancelled. The
next plan texts the new number only when the ledger gave consent for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Event, Reminder
from bot.ledger.change_words import ledger_change
from bot.ledger.upsert import apply_batch
from integrations.base.ledger import ContactRecord, CustomerRecord, LedgerBatch
from tests.support.ledger_files import row, write

TEXTED = {
    "tier": "transactional",  # due today: a text first, approved by the playbook
    "issue_date": "2026-01-01",
    "due_date": "2026-03-16",
}
OLD_PHONE = "+13125550142"
NEW_PHONE = "+13125550177"
LATER = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
PLUS_3 = "2026-03-19T14:00:00+00:00"  # the transactional ladder's +3 step, by text first


def _plan(cli: Any) -> dict[str, Any]:
    result = cli("plan", "--json")
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def _number_changes(session: Session) -> list[dict[str, Any]]:
    return [
        event.payload
        for event in session.scalars(
            select(Event).where(Event.kind == "contact.phone_changed").order_by(Event.id)
        )
    ]


def _texts(session: Session) -> list[tuple[str, str, str | None, str | None]]:
    """Each text's step, state, cancel reason, and the number it would go to now."""
    return [
        (reminder.step_key, reminder.state, reminder.cancel_reason, phone)
        for reminder, phone in session.execute(
            select(Reminder, Contact.phone)
            .join(Contact, Contact.id == Reminder.contact_id)
            .where(Reminder.channel == "sms")
            .order_by(Reminder.id)
        ).all()
    ]


def _texted_and_waiting(cli: Any, session: Session, tmp_path: Path, waiting: str) -> int:
    """The due-today text to the old number, planned (waiting for a person) or approved."""
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**TEXTED)]))).code == 0
    assert [r["channel"] for r in _plan(cli)["reminders"]] == ["sms"]
    session.rollback()
    session.execute(update(Reminder).values(state=waiting))
    session.commit()
    return session.scalars(select(Reminder.id)).one()


@pytest.mark.parametrize("waiting", ["planned", "approved"])
def test_a_new_number_with_consent_cancels_the_texts_approved_for_the_old_one(
    cli: Any,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    waiting: str,
) -> None:
    text_id = _texted_and_waiting(cli, session, tmp_path, waiting)

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the same person (same email) at another number, with consent to texts at it on its row
    moved = write(tmp_path / "b.csv", [row(**TEXTED, phone=NEW_PHONE, sms_consent="true")])
    result = cli("import-csv", str(moved))
    assert result.code == 0, result.stderr
    assert "0 contacts added, 1 updated" in result.stdout
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.phone, contact.sms_consent, contact.sms_consent_source) == (
        NEW_PHONE,
        True,
        "b.csv row 2",
    )
    # it was written and approved for the old number: it does not go to the new one
    assert _texts(session) == [("due_today", "cancelled", "phone_changed", NEW_PHONE)]
    assert _number_changes(session) == [
        {
            "contact": contact.id,
            "from": OLD_PHONE,
            "to": NEW_PHONE,
            "source": "b.csv",
            "consent_given": True,
            "texts_cancelled": [text_id],
        }
    ]
    status = cli("status", "C-1").stdout
    words = f"phone number {OLD_PHONE} → {NEW_PHONE} (b.csv; consent to texts given with it; 1"
    assert words in status
    assert "consent to texts withdrawn" not in status

    # the next step of the ladder texts the new number, which has consent of its own
    monkeypatch.setenv("ARBOT_NOW", PLUS_3)
    assert [(r["step"], r["channel"]) for r in _plan(cli)["reminders"]] == [("plus3", "sms")]
    session.rollback()
    assert _texts(session)[-1][:2] == ("plus3", "approved")
    assert _texts(session)[-1][3] == NEW_PHONE
    moved.write_bytes(moved.read_bytes() + b"\r\n")  # not the same bytes: read in full
    assert "nothing changed" in cli("import-csv", str(moved)).stdout
    session.rollback()
    assert len(_number_changes(session)) == 1


@pytest.mark.parametrize("waiting", ["planned", "approved"])
def test_a_new_number_without_consent_cancels_them_too_and_is_not_texted(
    cli: Any,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    waiting: str,
) -> None:
    text_id = _texted_and_waiting(cli, session, tmp_path, waiting)

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    moved = [row(**TEXTED, phone=NEW_PHONE, sms_consent="")]  # nothing said about consent
    assert cli("import-csv", str(write(tmp_path / "b.csv", moved))).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.phone, contact.sms_consent) == (NEW_PHONE, False)
    # the consent went with the old number: cancelled as no consent, as before
    assert _texts(session) == [("due_today", "cancelled", "no_sms_consent", NEW_PHONE)]
    assert _number_changes(session) == [
        {
            "contact": contact.id,
            "from": OLD_PHONE,
            "to": NEW_PHONE,
            "source": "b.csv",
            "consent_given": False,
            "texts_cancelled": [text_id],
        }
    ]
    status = cli("status", "C-1").stdout
    assert f"phone number {OLD_PHONE} → {NEW_PHONE} (b.csv; 1 waiting text cancelled)" in status
    assert "consent to texts withdrawn: the phone number changed" in status

    # the next step is not texted: the new number has no consent
    monkeypatch.setenv("ARBOT_NOW", PLUS_3)
    plan = _plan(cli)
    assert "sms" not in [r["channel"] for r in plan["reminders"]]
    session.rollback()
    assert [text[:2] for text in _texts(session)] == [("due_today", "cancelled")]


def test_a_new_number_cancels_no_email_and_a_first_number_is_no_change(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a contact known by email only, reminded by email
    by_email = {"issue_date": "2026-01-01", "due_date": "2026-03-09", "sms_consent": ""}
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**by_email, phone="")]))).code == 0
    assert [r["channel"] for r in _plan(cli)["reminders"]] == ["email"]

    monkeypatch.setenv("ARBOT_NOW", LATER.isoformat())
    # the ledger gives the contact a number for the first time: nothing was texted to none
    assert cli("import-csv", str(write(tmp_path / "b.csv", [row(**by_email)]))).code == 0
    # then another number: the email waiting is the address's, and stays
    moved = [row(**by_email, phone=NEW_PHONE)]
    assert cli("import-csv", str(write(tmp_path / "c.csv", moved))).code == 0
    session.rollback()
    assert session.scalars(select(Reminder.state)).one() == "planned"
    assert [(c["from"], c["to"], c["texts_cancelled"]) for c in _number_changes(session)] == [
        (OLD_PHONE, NEW_PHONE, [])
    ]


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("quickbooks", "QuickBooks company 9130"),
        ("xero", "Xero organisation Ridgeline"),
        ("freshbooks", "FreshBooks account 77"),
    ],
)
def test_an_accounting_sync_that_changes_the_number_cancels_the_waiting_text(
    cli: Any, runtime: Any, tmp_path: Path, source: str, label: str
) -> None:
    with runtime.sessions() as session:
        _texted_and_waiting(cli, session, tmp_path, "approved")
        customer_id = session.scalars(select(Contact.customer_id)).one()
    # an accounting source records no consent to texts (None), and names the customer by its id
    contact = ContactRecord("Maria Garcia", "ap@ridgeline.example", NEW_PHONE, None, None)
    customer = CustomerRecord("C-1", "Ridgeline Roofing", contacts=[contact])
    batch = LedgerBatch(source, label, customers={"C-1": customer})
    with runtime.writing() as session:
        session.execute(update(Contact).values(sms_consent_source="by hand"))
        # the customer stored from the CSV is this source's too
        session.execute(update(Customer).where(Customer.id == customer_id).values(source=source))
    with runtime.writing() as session:
        summary = apply_batch(session, batch, LATER)
    assert (summary.contacts_updated, len(summary.cancelled_reminders)) == (1, 1)
    with runtime.sessions() as session:
        assert _texts(session) == [("due_today", "cancelled", "no_sms_consent", NEW_PHONE)]
        assert [(c["source"], c["consent_given"], c["to"]) for c in _number_changes(session)] == [
            (label, False, NEW_PHONE)
        ]


def test_the_words_of_a_phone_change_name_both_numbers_and_what_it_cancelled() -> None:
    payload = {
        "contact": 3,
        "from": OLD_PHONE,
        "to": NEW_PHONE,
        "source": "b.csv",
        "consent_given": True,
        "texts_cancelled": [4, 9],
    }
    assert ledger_change("contact.phone_changed", payload, str) == (
        f"phone number {OLD_PHONE} → {NEW_PHONE} (b.csv; consent to texts given with it; "
        "2 waiting texts cancelled)"
    )
    assert (
        ledger_change("contact.phone_changed", {"from": OLD_PHONE, "to": NEW_PHONE}, str)
        == f"phone number {OLD_PHONE} → {NEW_PHONE}"
    )
