"""A known contact's new email address, as a ledger import gives it. The ledger is the source of
truth: when a customer's stored address is no longer in the batch and another is, the contact
moves to the new address instead of a second contact being added beside it (which left the old
address in use: the planner writes to a customer's first usable contact).

A move is taken only on evidence, per customer: a new address whose record has the phone number,
else the name, of exactly one stored contact whose address the batch no longer names (and no
other new address has it too); else, when the customer has exactly one such stored address and
the batch exactly one new one, the one replaces the other. Anything else is a contact added
beside the others, as a batch naming several contacts of a customer asks (the ledger CSV gives
one contact per address, over as many rows as it likes).

The marks an address got stay with it (RULES A7, C6: an opt-out and a bounce are an address's):
the new address has neither, and the Event of the move keeps the old address's, so that they come
back if the ledger later gives the customer that address again (a correction). So do the marks a
message sent to the old address before the move earned after it (bot/ledger/former_addresses.py):
an opt-out or a bounce recorded against the old address."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import among
from bot.core.models import Event
from integrations.base.ledger import ContactRecord, visible

ADDRESS_CHANGED = "contact.email_changed"  # the Event of a move
OPTED_OUT, UNUSABLE = "email_opted_out_at", "email_unusable_at"
MARKS = (OPTED_OUT, UNUSABLE)  # an address's own, moved with it
# The Events of a mark recorded against an address a contact has moved from, by their mark.
_MARKED = {"contact.opted_out": OPTED_OUT, "contact.bouncing": UNUSABLE}

SAME_PHONE, SAME_NAME, ONLY_ADDRESS = "phone", "name", "only address"


def moved_contacts(
    known: Sequence[Row[Any]], records: Sequence[ContactRecord], new: Sequence[int]
) -> dict[int, tuple[Row[Any], str]]:
    """Which of a customer's `records` (by their index; `new` are those with an address that
    matched no stored contact) moves which stored contact to its new address, and on what
    evidence (SAME_PHONE, SAME_NAME, ONLY_ADDRESS)."""
    if not new:
        return {}  # the usual case
    named = {record.email.lower() for record in records if record.email}
    left_out = [c for c in known if c.email and c.email.lower() not in named]
    if not left_out:
        return {}  # every stored address is still the ledger's: the new ones are added
    moves: dict[int, tuple[Row[Any], str]] = {}
    for evidence, same in ((SAME_PHONE, _same_phone), (SAME_NAME, _same_name)):
        candidates = {
            i: [c for c in left_out if same(c, records[i])] for i in new if i not in moves
        }
        for i, found in candidates.items():
            if len(found) != 1:
                continue
            claimed_by = [
                j for j, others in candidates.items() if any(o is found[0] for o in others)
            ]
            if claimed_by == [i]:
                moves[i] = (found[0], evidence)
        left_out = [c for c in left_out if all(c is not s for s, _why in moves.values())]
    unpaired = [i for i in new if i not in moves]
    if len(unpaired) == 1 and len(left_out) == 1:
        moves[unpaired[0]] = (left_out[0], ONLY_ADDRESS)
    return moves


def _same_phone(stored: Row[Any], record: ContactRecord) -> bool:
    return bool(record.phone) and stored.phone == record.phone


def _same_name(stored: Row[Any], record: ContactRecord) -> bool:
    return bool(record.name and stored.name) and _plain(stored.name) == _plain(record.name or "")


def _plain(name: str) -> str:
    return " ".join(name.casefold().split())


def remembered_marks(
    session: Session, addresses: Collection[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, datetime | None]]:
    """The marks each of these (customer id, address) pairs had when a contact of that customer
    last moved away from it, with those recorded against it since (a message sent to it before
    the move, opted out or bounced after), for those that have any. Read only when an import
    gives a known customer an address it has no contact at (rare)."""
    wanted = {(customer_id, address.lower()) for customer_id, address in addresses}
    if not wanted:
        return {}
    customer_ids = sorted({customer_id for customer_id, _address in wanted})
    found: dict[tuple[int, str], dict[str, datetime | None]] = {}
    for of_customers in among(session, Event.customer_id, customer_ids):
        for customer_id, kind, at, payload in session.execute(
            select(Event.customer_id, Event.kind, Event.at, Event.payload)
            .where(of_customers, Event.kind.in_([ADDRESS_CHANGED, *_MARKED]))
            .order_by(Event.id)
        ):
            if kind == ADDRESS_CHANGED:
                key = (customer_id, str(payload.get("from", "")).lower())
                if key in wanted:  # the latest move away from it wins
                    found[key] = {
                        mark: datetime.fromisoformat(payload[mark]) if payload.get(mark) else None
                        for mark in MARKS
                    }
                continue
            if not payload.get("address") or payload.get("channel", "email") != "email":
                continue  # a mark of a contact's current address: the contact holds it
            key = (customer_id, str(payload["address"]).lower())
            if key in found:  # recorded after a move away from it, as only those are
                marks = found[key]
                marks[_MARKED[kind]] = marks[_MARKED[kind]] or at
    return {key: marks for key, marks in found.items() if any(marks.values())}


def record_move(
    session: Session,
    stored: Row[Any],
    address: str,
    evidence: str,
    label: str,
    now: datetime,
) -> None:
    """The Event of a contact's move to `address`: from where, on what evidence, and the old
    address's marks (kept here, as the contact's row now holds the new address's)."""
    payload: dict[str, Any] = {
        "contact": stored.id,
        "from": stored.email,
        "to": address,
        "source": visible(label, 200),
        "matched_by": evidence,
    }
    for mark in MARKS:
        value = getattr(stored, mark)
        payload[mark] = value.isoformat() if value else None
    audit.record(session, now, ADDRESS_CHANGED, customer_id=stored.customer_id, payload=payload)
