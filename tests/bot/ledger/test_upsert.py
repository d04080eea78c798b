"""Upserting the ledger: idempotent re-imports, payments seen through the ledger, history kept."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Event, Invoice, Reminder
from tests.support.ledger_files import row, write


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    session.rollback()
    rows: list[tuple[Any, ...]] = []
    for model in (Customer, Contact, Invoice, Event):
        table = model.__table__
        rows.extend(tuple(r) for r in session.execute(select(table).order_by(table.c.id)))
    return rows


def test_importing_the_same_file_twice_changes_nothing(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(),
            row(invoice_number="INV-2", amount="99.95", balance="40.00"),
            row(
                customer_id="C-2",
                customer_name="Harbor Family Dental",
                email="ap@harbor.example",
                phone="",
                sms_consent="",
                tier="",
                invoice_number="H-7",
                currency="EUR",
            ),
        ],
    )
    assert cli("import-csv", str(path)).code == 0
    before = _snapshot(session)
    # The same rows with a blank line after them: not the same bytes, so read and compared in full
    path.write_bytes(path.read_bytes() + b"\r\n")
    second = cli("import-csv", str(path))
    assert second.code == 0
    assert "already up to date, nothing changed" in second.stdout
    assert _snapshot(session) == before


def test_amounts_are_stored_exactly(cli: Any, session: Session, tmp_path: Path) -> None:
    path = write(
        tmp_path / "ledger.csv",
        [
            row(amount="99999999999999.99", balance="0.1"),
            row(invoice_number="K-1", currency="KWD", amount="1.234", balance="1.234"),
        ],
    )
    assert cli("import-csv", str(path)).code == 0
    invoice, dinar = session.scalars(select(Invoice).order_by(Invoice.id)).all()
    assert invoice.total == Decimal("99999999999999.99")
    assert invoice.balance == Decimal("0.1")
    assert dinar.total == Decimal("1.234")


def test_a_balance_that_drops_to_zero_marks_the_invoice_paid_and_records_it(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    write(tmp_path / "day1.csv", [row(), row(invoice_number="INV-2")])
    write(tmp_path / "day2.csv", [row(balance="0.00"), row(invoice_number="INV-2")])
    assert cli("import-csv", str(tmp_path / "day1.csv")).code == 0
    result = cli("import-csv", str(tmp_path / "day2.csv"))
    assert result.code == 0
    assert "Now paid: INV-1" in result.stdout
    paid = session.scalars(select(Invoice).where(Invoice.number == "INV-1")).one()
    assert paid.status == "paid"
    assert paid.balance == 0
    assert paid.paid_at is not None
    events = session.scalars(select(Event).where(Event.kind == "invoice.paid")).all()
    assert [(e.invoice_id, e.payload["balance_before"], e.actor) for e in events] == [
        (paid.id, "1200.0000", "system")
    ]
    other = session.scalars(select(Invoice).where(Invoice.number == "INV-2")).one()
    assert other.status == "open"


def test_a_partial_payment_is_recorded_and_the_invoice_stays_open(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    assert cli("import-csv", str(write(tmp_path / "b.csv", [row(balance="200.00")]))).code == 0
    invoice = session.scalars(select(Invoice)).one()
    assert (invoice.status, invoice.balance) == ("open", Decimal("200.00"))
    kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds == [
        "customer.added",
        "ledger.imported",
        "invoice.balance_changed",
        "ledger.imported",
    ]


def test_an_invoice_whose_balance_rises_again_is_reopened(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(balance="0")]))).code == 0
    assert session.scalars(select(Invoice.status)).one() == "paid"
    result = cli("import-csv", str(write(tmp_path / "b.csv", [row(balance="300")])))
    assert "Reopened" in result.stdout
    session.rollback()  # a new read transaction sees the second import
    invoice = session.scalars(select(Invoice)).one()
    assert (invoice.status, invoice.paid_at) == ("open", None)
    assert session.scalar(select(func.count()).where(Event.kind == "invoice.reopened")) == 1


def test_customer_details_follow_the_ledger_but_empty_columns_keep_what_is_stored(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(tier="strategic")]))).code == 0
    changed = row(customer_name="Ridgeline Roofing LLC", tier="", timezone="America/Denver")
    assert cli("import-csv", str(write(tmp_path / "b.csv", [changed]))).code == 0
    customer = session.scalars(select(Customer)).one()
    assert customer.name == "Ridgeline Roofing LLC"
    assert customer.tier == "strategic"
    assert customer.timezone == "America/Denver"


def test_contacts_follow_their_customers_new_timezone_named_in_the_file_or_not(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    first = [
        row(),  # America/Chicago
        row(invoice_number="INV-2", email="", phone="+13125550199", contact_name="Front desk"),
    ]
    assert cli("import-csv", str(write(tmp_path / "a.csv", first))).code == 0
    # the front desk's row is gone from the second file: its contact follows all the same
    moved = [row(timezone="America/Los_Angeles")]
    assert cli("import-csv", str(write(tmp_path / "b.csv", moved))).code == 0
    session.rollback()
    assert session.scalars(select(Customer.timezone)).one() == "America/Los_Angeles"
    zones = session.scalars(select(Contact.timezone).order_by(Contact.id)).all()
    assert zones == ["America/Los_Angeles", "America/Los_Angeles"]
    # a file without the timezone changes no one's
    no_zone = [row(timezone="")]
    assert cli("import-csv", str(write(tmp_path / "c.csv", no_zone))).code == 0
    session.rollback()
    assert session.scalars(select(Contact.timezone)).all() == ["America/Los_Angeles"] * 2


def test_contacts_are_matched_by_email_and_consent_is_recorded_once(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    first = [
        row(sms_consent="false"),
        row(
            invoice_number="INV-2",
            email="",
            phone="+13125550199",
            contact_name="Front desk",
            sms_consent="false",
        ),
    ]
    assert cli("import-csv", str(write(tmp_path / "a.csv", first))).code == 0
    assert session.scalar(select(func.count()).select_from(Contact)) == 2
    again = [row(email="ap@RIDGELINE.example", sms_consent="true", contact_name="Maria G.")]
    assert cli("import-csv", str(write(tmp_path / "b.csv", again))).code == 0
    session.rollback()
    contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
    assert len(contacts) == 2
    assert (contacts[0].name, contacts[0].sms_consent) == ("Maria G.", True)
    assert contacts[0].sms_consent_source == "b.csv row 2"
    consent_at = contacts[0].sms_consent_at
    assert cli("import-csv", str(tmp_path / "b.csv")).code == 0
    session.rollback()
    assert session.get(Contact, contacts[0].id).sms_consent_at == consent_at  # type: ignore[union-attr]


def test_a_no_to_texts_in_the_ledger_withdraws_consent_and_cancels_the_waiting_text(
    cli: Any, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texted = {
        "tier": "transactional",  # due today: a text first, approved by itself
        "issue_date": "2026-01-01",
        "due_date": "2026-03-16",
    }
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**texted)]))).code == 0
    assert cli("plan").code == 0
    # an empty cell says nothing: the consent stays, and so does the text
    blank = write(tmp_path / "b.csv", [row(**texted, sms_consent="")])
    assert "nothing changed" in cli("import-csv", str(blank)).stdout
    session.rollback()
    given_at = session.scalars(select(Contact.sms_consent_at)).one()
    assert given_at is not None
    assert session.scalars(select(Reminder.state)).one() == "approved"

    later = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
    monkeypatch.setenv("ARBOT_NOW", later.isoformat())
    withdraw = write(tmp_path / "c.csv", [row(**texted, sms_consent="no")])
    assert cli("import-csv", str(withdraw)).code == 0
    session.rollback()
    contact = session.scalars(select(Contact)).one()
    assert (contact.sms_consent, contact.sms_consent_at, contact.sms_consent_source) == (
        False,
        later,
        "c.csv row 2",
    )
    reminder = session.scalars(select(Reminder)).one()
    assert (reminder.channel, reminder.state, reminder.cancel_reason) == (
        "sms",
        "cancelled",
        "no_sms_consent",
    )
    withdrawn = session.scalars(
        select(Event).where(Event.kind == "contact.sms_consent_withdrawn")
    ).one()
    assert withdrawn.payload == {
        "contact": contact.id,
        "source": "c.csv row 2",
        "consent_given_at": given_at.isoformat(),
        "consent_source": "a.csv row 2",
    }
    withdraw.write_bytes(withdraw.read_bytes() + b"\r\n")  # not the same bytes: read in full
    assert "nothing changed" in cli("import-csv", str(withdraw)).stdout


def test_the_audit_log_refuses_changes_in_the_database_itself(runtime: Any) -> None:
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    from bot.core import audit

    with runtime.writing() as session:
        audit.record(session, runtime.clock.now(), "test.happened")
    for statement in ("UPDATE events SET kind = 'rewritten'", "DELETE FROM events"):
        with pytest.raises(DatabaseError, match="append-only"), runtime.writing() as session:
            session.execute(text(statement))
    with runtime.sessions() as session:
        assert session.scalars(select(Event.kind)).all() == ["test.happened"]


def test_an_invoice_closed_by_a_recorded_payment_is_not_reopened_by_a_stale_ledger(
    cli: Any, runtime: Any, tmp_path: Path
) -> None:
    from bot.core.models import Payment, PaymentAllocation

    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(balance="0")]))).code == 0
    now = runtime.clock.now()
    with runtime.writing() as session:
        invoice = session.scalars(select(Invoice)).one()
        payment = Payment(
            source="stripe",
            external_id="pi_1",
            received_on=now.date(),
            amount=Decimal("1200"),
            currency="USD",
            created_at=now,
        )
        session.add(payment)
        session.flush()
        session.add(
            PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id, amount=Decimal("1200"))
        )
    assert cli("import-csv", str(write(tmp_path / "b.csv", [row(balance="1200")]))).code == 0
    with runtime.sessions() as session:
        assert session.scalars(select(Invoice.status)).one() == "paid"


def test_two_imports_at_once_both_land_and_create_nothing_twice(
    runtime: Any, tmp_path: Path
) -> None:
    import threading

    from bot.ledger.upsert import apply_batch
    from integrations.csv_ledger import read_ledger_csv

    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Firm {n}",
            email=f"ap@f{n}.example",
            invoice_number=f"I-{n}",
        )
        for n in range(200)
    ]
    batch = read_ledger_csv(write(tmp_path / "l.csv", rows))
    errors: list[BaseException] = []

    def load() -> None:
        try:
            with runtime.writing() as session:
                apply_batch(session, batch, runtime.clock.now())
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 200
        assert session.scalar(select(func.count()).select_from(Customer)) == 200
