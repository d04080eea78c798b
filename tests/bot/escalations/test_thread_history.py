"""The account history an escalation's thread shows: what the ledger changed on an invoice, a
consent to texts that was dropped, and why a waiting reminder was cancelled, each in words."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Customer, Invoice
from bot.core.runtime import Runtime
from bot.escalations.thread import history_of
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from tests.support.ledger_files import HEADER, row, write


def _history(session: Session) -> list[str]:
    session.rollback()  # a new read transaction sees the imports
    customer_id = session.scalars(select(Customer.id)).one()
    return [line.text for line in history_of(session, customer_id, "America/New_York")]


def test_the_history_says_what_the_ledger_changed_on_an_invoice_and_a_dropped_consent(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    corrected = row(
        issue_date="2026-01-16",
        due_date="2026-02-28",
        amount="1500.00",
        phone="+13125550177",  # consent was given for the old number
        sms_consent="",
    )
    assert cli("import-csv", str(write(tmp_path / "b.csv", [corrected]))).code == 0
    history = _history(session)
    assert "consent to texts withdrawn: the phone number changed (b.csv, new phone)" in history
    assert "INV-1 due date 2026-02-14 → 2026-02-28" in history
    assert "INV-1 total 1200.00 → 1500.00 USD" in history
    assert "INV-1 issue date 2026-01-15 → 2026-01-16" in history

    given = write(tmp_path / "c.csv", [row(phone="+13125550177", sms_consent="true")])
    assert cli("import-csv", str(given)).code == 0
    withdraw = write(tmp_path / "d.csv", [row(phone="+13125550177", sms_consent="no")])
    assert cli("import-csv", str(withdraw)).code == 0
    assert _history(session)[-1] == "consent to texts withdrawn (d.csv row 2)"


def test_a_reminder_cancelled_by_a_balance_change_says_the_balance_changed(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    texted = {"tier": "transactional", "issue_date": "2026-01-01", "due_date": "2026-03-16"}
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row(**texted)]))).code == 0
    assert cli("plan").code == 0
    paid_part = write(tmp_path / "b.csv", [row(**texted, balance="900.00")])
    assert cli("import-csv", str(paid_part)).code == 0
    cancelled = [line for line in _history(session) if line.startswith("cancelled")]
    assert len(cancelled) == 1
    # not "replaced by a newer reminder": no reminder replaced it
    assert cancelled[0].endswith(
        "(an invoice's balance or status changed after the reminder was planned)"
    )


def test_the_history_says_a_balance_the_ledger_changed_and_a_paid_day_it_corrected(
    cli: Any, session: Session, tmp_path: Path
) -> None:
    with_paid = [*HEADER, "paid_date"]
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()], with_paid))).code == 0
    part_paid = write(tmp_path / "b.csv", [row(balance="800.00")], with_paid)
    assert cli("import-csv", str(part_paid)).code == 0
    # paid when seen (NOW: 10:00 in New York), then the file says it was paid on 20 February
    paid = write(tmp_path / "c.csv", [row(balance="0.00")], with_paid)
    assert cli("import-csv", str(paid)).code == 0
    corrected = write(tmp_path / "d.csv", [row(balance="0.00", paid_date="2026-02-20")], with_paid)
    assert cli("import-csv", str(corrected)).code == 0

    history = _history(session)
    assert "INV-1 balance 1200.00 → 800.00 USD" in history
    # in the business's timezone, as the lines' own times are
    assert history[-1] == "INV-1 paid at 2026-02-20 00:00 (was 2026-03-16 10:00)"


def test_the_history_says_an_invoice_the_ledger_voided(
    cli: Any, runtime: Runtime, session: Session, tmp_path: Path
) -> None:
    """An accounting source's void (bot/ledger/invoices.py records it) is in the history."""
    assert cli("import-csv", str(write(tmp_path / "a.csv", [row()]))).code == 0
    with runtime.writing() as writing:
        invoice = writing.scalars(select(Invoice)).one()
        payload = {"number": "INV-1", "currency": "USD", "source": "ledger"}
        audit.record(
            writing,
            runtime.clock.now(),
            "invoice.voided",
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            payload=payload,
        )
    assert _history(session)[-1] == "voided INV-1"


def test_a_note_stored_before_notes_kept_their_mentions_still_mentions_people_not_addresses(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A note stored before a note kept where Slack mentioned people has only its text, with each
    mention written `@U0ALICE01`: that person is mentioned again, and an address such as
    AP@UNITEDFOODS.COM or ap@U0ALICE01.example stays as written. A note stored now says where its
    mentions are (none here), so an `@U0BOBBY01` typed as text stays as typed."""
    from bot.escalations import service

    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), now)
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        audit.record(
            session,
            now + timedelta(minutes=1),
            "note.added",
            actor="U0APPROVER",
            customer_id=customer_id,
            payload={
                "escalation": escalation.id,
                "text": "cc @U0ALICE01: wrote to AP@UNITEDFOODS.COM and ap@U0ALICE01.example, "
                "ask @W0BOBBY01.",
            },
        )
        service.thread_note(
            session, escalation.id, "U0APPROVER", "not @U0BOBBY01 yet", now + timedelta(minutes=2)
        )
    with runtime.sessions() as session:
        notes = [
            line.text
            for line in history_of(session, customer_id, "America/New_York")
            if "note by" in line.text
        ]
    assert notes == [
        "note by <@U0APPROVER>: cc <@U0ALICE01>: wrote to AP@UNITEDFOODS.COM and "
        "ap@U0ALICE01.example, ask <@W0BOBBY01>.",
        "note by <@U0APPROVER>: not @U0BOBBY01 yet",
    ]


def test_an_old_note_mentions_again_only_what_is_shaped_like_a_slack_user_id(
    runtime: Runtime, tmp_path: Path
) -> None:
    """In a note stored before notes kept their mentions, only a Slack user id (U or W, then at
    least eight capitals and digits with a digit among them) is mentioned again: "@UPS", "@US"
    and "@USERNAMES" are words someone typed, not people, and stay as written."""
    from bot.escalations import service

    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), now)
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        audit.record(
            session,
            now + timedelta(minutes=1),
            "note.added",
            actor="U0APPROVER",
            customer_id=customer_id,
            payload={
                "escalation": escalation.id,
                "text": "shipped @UPS today to the @US office, @USERNAMES and @U123 asked; "
                "cc @U024BE7LH and @W01ABCDEFGH.",
            },
        )
    with runtime.sessions() as session:
        (note,) = [
            line.text
            for line in history_of(session, customer_id, "America/New_York")
            if "note by" in line.text
        ]
    assert note == (
        "note by <@U0APPROVER>: shipped @UPS today to the @US office, @USERNAMES and @U123 "
        "asked; cc <@U024BE7LH> and <@W01ABCDEFGH>."
    )
