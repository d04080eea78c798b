"""Contacts of a ledger import, whatever its source: new ones inserted, changed ones updated in
bulk, and consent to texts kept per phone number (docs RULES B1). A consent the ledger withdraws,
or one that was given for a number the ledger has since replaced, is dropped with an Event that
keeps when and where it had been given. A contact whose number the ledger changed is no longer
texted what was written and approved for the old number: its waiting texts are cancelled, and a
`contact.phone_changed` Event names both numbers and those texts. A contact whose address the
ledger changed moves to the new one (bot/ledger/contact_addresses.py); a bounce mark and an email
opt-out go with the address they were for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import among
from bot.core.models import Contact, Reminder
from bot.ledger.bulk import bulk_update, insert_columns
from bot.ledger.change_words import PHONE_CHANGED
from bot.ledger.contact_addresses import MARKS, moved_contacts, record_move, remembered_marks
from integrations.base.ledger import ContactRecord, LedgerBatch, visible

if TYPE_CHECKING:
    from bot.ledger.upsert import ImportSummary

# Rows are read as plain tuples of the columns compared, not ORM objects (as the invoices are).
_CONTACT_FIELDS = (
    "id",
    "customer_id",
    "name",
    "email",
    "phone",
    "timezone",
    "sms_consent",
    "sms_consent_at",
    "sms_consent_source",
    "language",
    "email_opted_out_at",
    "email_unusable_at",
)
# A contact's new address has none of the old one's marks, unless it once had its own.
_NO_MARKS: dict[str, datetime | None] = dict.fromkeys(MARKS)
NUMBER_CHANGED = "contact.phone_changed"  # the Event of a contact's new phone number


@dataclass(frozen=True)
class NumberChange:
    """A stored contact's new phone number: its customer, and its Event's payload but the texts
    it cancelled (written by `record_number_changes` once those are cancelled)."""

    customer_id: int
    payload: dict[str, Any]


@dataclass
class ContactChanges:
    """An import's changes of stored contacts, to be written by `update_contacts`, and the
    contacts whose waiting messages they stop."""

    consent_dropped: list[int] = field(default_factory=list)  # no more consent to texts
    moved: list[int] = field(default_factory=list)  # at another email address
    # at another phone number (from one it had): contact id -> the change
    renumbered: dict[int, NumberChange] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)  # each: id, then the columns


def add_contacts(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> ContactChanges:
    """Add the batch's new contacts, and return its changes of stored ones, not yet written
    (`update_contacts` writes them), with those whose consent to texts it drops (withdrawn by the
    ledger, or lost with the phone number it was given for), those it gives another phone number
    and those it moves to another email address. The import writes them once it holds every
    reminder it cancels: a Twilio failure report and the send worker's results change a message,
    then its contact, so an import that held the contact while it waited for the message would
    deadlock with them."""
    by_customer: dict[int, list[Row[Any]]] = {}
    wanted_ids = {customer_ids[external_id] for external_id in batch.customers}
    contact_columns = [getattr(Contact, c) for c in _CONTACT_FIELDS]
    for stored in session.connection().execute(select(*contact_columns)).all():
        if stored.customer_id in wanted_ids:
            by_customer.setdefault(stored.customer_id, []).append(stored)
    new: list[tuple[int, str | None, ContactRecord]] = []  # customer id, its timezone, contact
    changes_of: dict[int, dict[str, Any]] = {}  # contact id -> its changes
    done = ContactChanges()
    moves: list[tuple[Row[Any], str, str]] = []  # stored contact, its new address, the evidence
    for external_id, record in batch.customers.items():
        customer_id = customer_ids[external_id]
        known = by_customer.get(customer_id, [])
        matched = [_match_contact(known, contact) for contact in record.contacts]
        unmatched = [
            i for i, contact in enumerate(record.contacts) if contact.email and matched[i] is None
        ]
        moved = moved_contacts(known, record.contacts, unmatched)
        for index, contact in enumerate(record.contacts):
            existing = matched[index]
            if index in moved:
                existing, evidence = moved[index]
                moves.append((existing, contact.email or "", evidence))
            if existing is None:
                new.append((customer_id, record.timezone, contact))
                continue
            changes = _contact_changes(existing, contact, batch.label, now)
            if changes:
                changes_of.setdefault(existing.id, {}).update(changes)
            if changes.get("sms_consent") is False and existing.id not in done.consent_dropped:
                done.consent_dropped.append(existing.id)
                _record_withdrawal(session, existing, changes, now)
            if "phone" in changes and existing.phone and existing.id not in done.renumbered:
                done.renumbered[existing.id] = _number_change(existing, changes, batch.label)
        if record.timezone is not None:
            # No source gives a contact a timezone of its own: a contact's is its customer's,
            # copied when it was added, and follows the customer's (whether or not this batch
            # names the contact). None stays None: it already reads the customer's.
            for stored in known:
                if stored.timezone is not None and stored.timezone != record.timezone:
                    changes_of.setdefault(stored.id, {})["timezone"] = record.timezone
    # An address a known customer's contact moved away from keeps its marks in that move's Event:
    # a contact given it again (moved back, or added) has them again.
    remembered = remembered_marks(
        session,
        [(stored.customer_id, address) for stored, address, _evidence in moves]
        + [
            (customer_id, contact.email)
            for customer_id, _timezone, contact in new
            if contact.email and customer_id in by_customer
        ],
    )
    for stored, address, evidence in moves:
        changes_of[stored.id].update(
            remembered.get((stored.customer_id, address.lower()), _NO_MARKS)
        )
        record_move(session, stored, address, evidence, batch.label, now)
        done.moved.append(stored.id)
    insert_columns(session, Contact, _new_contacts(new, now, remembered))
    done.updates = [
        {"id": contact_id, "updated_at": now, **changes}
        for contact_id, changes in changes_of.items()
    ]
    summary.contacts_created = len(new)
    summary.contacts_updated = len(done.updates)
    return done


def update_contacts(session: Session, changes: ContactChanges) -> None:
    """Write the changes of stored contacts `add_contacts` found."""
    bulk_update(session, Contact, changes.updates)


def _number_change(stored: Row[Any], changes: dict[str, Any], label: str) -> NumberChange:
    payload = {
        "contact": stored.id,
        "from": stored.phone,
        "to": changes["phone"],
        "source": visible(label, 200),
        # consent given for the new number on its record; else any consent went with the old one
        "consent_given": bool(changes.get("sms_consent")),
    }
    return NumberChange(stored.customer_id, payload)


def record_number_changes(
    session: Session, changes: ContactChanges, cancelled: Sequence[int], now: datetime
) -> None:
    """The Event of each new phone number `add_contacts` found, with the texts to its contact
    among `cancelled` (the import's cancels of texts waiting for the old number): written after
    those cancels, as they say what the change stopped."""
    if not changes.renumbered:
        return
    texts_of: dict[int | None, list[int]] = {}  # the texts to each renumbered contact
    renumbered = list(changes.renumbered)
    for of_cancelled in among(session, Reminder.id, sorted(cancelled)):
        for reminder_id, contact_id in session.execute(
            select(Reminder.id, Reminder.contact_id).where(
                of_cancelled, Reminder.contact_id.in_(renumbered)
            )
        ):
            texts_of.setdefault(contact_id, []).append(reminder_id)
    for contact_id, change in changes.renumbered.items():
        audit.record(
            session,
            now,
            NUMBER_CHANGED,
            customer_id=change.customer_id,
            payload={**change.payload, "texts_cancelled": sorted(texts_of.get(contact_id, []))},
        )


def _contact_changes(
    stored: Row[Any], record: ContactRecord, label: str, now: datetime
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if record.name and stored.name != record.name:
        changes["name"] = record.name
    if record.email and stored.email != record.email:
        changes["email"] = record.email
        if (stored.email or "").lower() != record.email.lower():
            # A bounce (or a reply from the wrong person) marked the old address unusable, not
            # this one; a change of case alone is the same address (matched as one) and keeps
            # its mark.
            changes["email_unusable_at"] = None
            if stored.email:
                # A move from another address: an email opt-out was that address's (RULES A7,
                # the one-click unsubscribe stops "only that one") and stays with it, in the
                # move's Event. A contact that had no address keeps its opt-out.
                changes["email_opted_out_at"] = None
    if record.language and stored.language != record.language:
        changes["language"] = record.language
    if record.phone and stored.phone != record.phone:
        changes["phone"] = record.phone
        changes.update(_new_number(stored, record, label, now))
    elif record.sms_consent is not None and record.sms_consent != stored.sms_consent:
        # given or withdrawn (the ledger CSV's "false"); None, not given, keeps what is stored
        changes.update(
            sms_consent=record.sms_consent,
            sms_consent_at=now,
            sms_consent_source=record.consent_source,
        )
    return changes


def _new_number(
    stored: Row[Any], record: ContactRecord, label: str, now: datetime
) -> dict[str, Any]:
    """What a new phone number changes besides itself. Consent is given for a number, so the old
    number's does not carry over: the new one has consent only when this record gives it (then
    recorded with this import as its source and time, as any grant is), and a stored consent is
    dropped otherwise (a "no", or nothing said, as every accounting source says nothing). An
    undeliverable mark was the old number's too.

    The STOP opt-out (sms_opted_out_at) is kept on purpose: it is the person's, who stays opted
    out until they text START, whatever number the ledger now gives them."""
    changes: dict[str, Any] = {"sms_unusable_at": None}
    if record.sms_consent:
        changes.update(
            sms_consent=True, sms_consent_at=now, sms_consent_source=record.consent_source
        )
    elif stored.sms_consent:
        changes.update(
            sms_consent=False,
            sms_consent_at=now,
            # the row the "no" is on, else the import that changed the number
            sms_consent_source=record.consent_source or f"{visible(label, 200)}, new phone",
        )
    return changes


def _record_withdrawal(
    session: Session, stored: Row[Any], changes: dict[str, Any], now: datetime
) -> None:
    """An Event of the withdrawal that keeps when and where the consent had been given: the
    contact's row now holds the withdrawal's, and the texts already sent rested on the consent.
    A consent dropped with the number it was given for says so."""
    given_at = stored.sms_consent_at
    payload: dict[str, Any] = {
        "contact": stored.id,
        "source": changes["sms_consent_source"],
        "consent_given_at": given_at.isoformat() if given_at else None,
        "consent_source": stored.sms_consent_source,
    }
    if "phone" in changes:
        payload["reason"] = PHONE_CHANGED
    audit.record(
        session,
        now,
        "contact.sms_consent_withdrawn",
        customer_id=stored.customer_id,
        payload=payload,
    )


def _new_contacts(
    new: list[tuple[int, str | None, ContactRecord]],
    now: datetime,
    remembered: dict[tuple[int, str], dict[str, datetime | None]],
) -> dict[str, list[Any]]:
    """The new contacts' rows, column by column (no dict for each contact)."""
    count = len(new)
    contacts = [contact for _customer_id, _timezone, contact in new]
    columns: dict[str, list[Any]] = {
        "customer_id": [customer_id for customer_id, _timezone, _contact in new],
        "name": [contact.name for contact in contacts],
        "email": [contact.email for contact in contacts],
        "phone": [contact.phone for contact in contacts],
        "role": ["billing"] * count,
        "timezone": [timezone for _customer_id, timezone, _contact in new],
        # a new contact's consent is recorded when given; a "no" (or none) is no consent
        "sms_consent": [bool(contact.sms_consent) for contact in contacts],
        "sms_consent_at": [now if contact.sms_consent else None for contact in contacts],
        "sms_consent_source": [
            contact.consent_source if contact.sms_consent else None for contact in contacts
        ],
        "language": [contact.language for contact in contacts],
        "created_at": [now] * count,
        "updated_at": [now] * count,
    }
    if remembered:  # an address a contact of the customer once moved away from, with its marks
        marks = [
            remembered.get((customer_id, (contact.email or "").lower()), _NO_MARKS)
            for customer_id, _timezone, contact in new
        ]
        for mark in MARKS:
            columns[mark] = [of_address[mark] for of_address in marks]
    return columns


def _match_contact(known: list[Row[Any]], record: ContactRecord) -> Row[Any] | None:
    """Same person: same email (case-insensitive), else same phone when neither has an email."""
    for contact in known:
        if record.email and contact.email and contact.email.lower() == record.email.lower():
            return contact
    for contact in known:
        if record.phone and contact.phone == record.phone and not (record.email and contact.email):
            return contact
    return None
