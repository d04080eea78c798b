"""Invoices a source deleted: voided at the sync that learns of it, with care for a full answer
that lacks many at once.

A source names the invoices it deleted (QuickBooks' change data capture) or, in a full sync,
gives every invoice it has (`LedgerBatch.complete`): a stored one of that source it lacks, and
names in no problem, was deleted there. But an answer lacks invoices for other reasons too
(another company connected, a truncated or empty answer), and voiding on it would end the
follow-up of the whole book. So a full answer that lacks more than HELD_FLOOR (2) of the
source's stored open invoices and more than half of them (HELD_HALF: so a small book is not voided
by one answer, while one or two deleted in it are), or more than HELD_ABOVE of them and more than
HELD_SHARE of them, or that holds no invoice at all (not even one skipped for a problem), voids
none of those it lacks (`summary.voids_held` names them, and the finance channel is told once:
bot/ledger/sync_failures.py). The sync then keeps its cursor, so the next one reads everything
again and checks again; so does a full sync that voided invoices it lacked, so that one an answer
lacked by mistake is brought back at once: an invoice voided as deleted that the source gives
again, not void, is restored (`voided_as_deleted`, used by bot/ledger/invoices.py).

What a batch deletes is decided before it is stored (`find_deleted`), so that an invoice of the
batch may take the number of one voided as deleted in the same sync (never of one whose void is
held).

Only an open invoice is voided as deleted: a paid one's history stays paid, and one written off
stays so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Event, Invoice
from bot.ledger.bulk import bulk_update, insert_rows
from integrations.base.ledger import LedgerBatch, visible

if TYPE_CHECKING:
    from bot.ledger.upsert import ImportSummary

HELD_FLOOR = 2  # a full answer may always lack this many of the open ones (deleted there)
HELD_HALF = Decimal("0.5")  # else never more than this share of them
HELD_ABOVE = 10  # nor more than this many of them and
HELD_SHARE = Decimal("0.10")  # more than this share of them at once
_CHUNK = 500  # invoice ids per `IN (...)`


@dataclass
class Deletions:
    """What a batch deletes, decided once before it is stored (its invoices may take the numbers
    of those deleted): the stored open invoices to void, and the numbers of those whose voids
    are held."""

    found: list[Any] = field(default_factory=list)  # rows of the stored open invoices
    lacking: set[str] = field(default_factory=set)  # source ids of those voided as lacking
    held: list[str] = field(default_factory=list)


def find_deleted(session: Session, batch: LedgerBatch) -> Deletions:
    """The stored open invoices the source deleted: those it names by its own ids and, when the
    batch is complete, those of this source it lacks and names in no problem (a record skipped
    is not deleted), unless it lacks too many of the source's open invoices (then none of
    those, named in `held`)."""
    in_batch = set(map(attrgetter("external_id"), batch.invoices))
    deleted = set(batch.deleted_invoices) - in_batch
    named = {problem.external_id for problem in batch.problems if problem.kind == "invoice"}
    query = select(
        Invoice.id,
        Invoice.customer_id,
        Invoice.number,
        Invoice.currency,
        Invoice.balance,
        Invoice.external_id,
    ).where(Invoice.source == batch.source, Invoice.status == "open")
    if not batch.complete:
        query = query.where(Invoice.external_id.in_(deleted))
    stored = session.execute(query).all()
    lacking = [
        row
        for row in stored
        if batch.complete
        and row.external_id not in deleted
        and row.external_id not in in_batch
        and visible(row.external_id) not in named
    ]
    held: list[str] = []
    if lacking and (
        not (batch.invoices or named)  # no invoice in the answer at all
        or (len(lacking) > HELD_FLOOR and len(lacking) > HELD_HALF * len(stored))  # most of it
        or (len(lacking) > HELD_ABOVE and len(lacking) > HELD_SHARE * len(stored))
    ):
        held = [row.number for row in lacking]
        lacking = []
    return Deletions(
        found=[row for row in stored if row.external_id in deleted] + lacking,
        lacking={row.external_id for row in lacking},
        held=held,
    )


def void_deleted(
    session: Session,
    batch: LedgerBatch,
    now: datetime,
    summary: ImportSummary,
    deletions: Deletions,
) -> None:
    """Void the invoices `find_deleted` found (before the batch was stored). Each voided one gets
    an `invoice.voided` Event saying so (`deleted`, and `lacking` when the answer lacked it);
    their waiting reminders are cancelled after."""
    summary.voids_held = deletions.held
    if deletions.held or deletions.lacking:
        batch.cursor = None  # the sync keeps its cursor: the next one reads all and checks again
    found = deletions.found
    events: list[dict[str, Any]] = []
    for row in found:
        summary.invoices_voided.append(row.number)
        summary.changed_invoice_ids.append(row.id)
        payload = {
            "number": row.number,
            "currency": row.currency,
            "balance_before": str(row.balance),
            "balance_after": str(row.balance),
            "source": "ledger",
            "deleted": True,
        }
        if row.external_id in deletions.lacking:
            payload["lacking"] = True
        events.append(
            {
                "at": now,
                "actor": audit.SYSTEM,
                "kind": "invoice.voided",
                "customer_id": row.customer_id,
                "invoice_id": row.id,
                "reminder_id": None,
                "payload": payload,
            }
        )
    bulk_update(
        session,
        Invoice,
        [{"id": row.id, "status": "void", "updated_at": now} for row in found],
    )
    insert_rows(session, Event, events)
    summary.invoices_updated += len(found)


def voided_as_deleted(session: Session, invoice_ids: list[int]) -> set[int]:
    """Of these void invoices, those arbot voided because their source deleted them or no longer
    had them (their last `invoice.voided` Event is marked `deleted`): one the source gives again,
    not void, was not deleted after all and is restored. One voided in the source stays void."""
    deleted: dict[int, bool] = {}
    for offset in range(0, len(invoice_ids), _CHUNK):
        query = (
            select(Event.invoice_id, Event.payload)
            .where(
                Event.kind == "invoice.voided",
                Event.invoice_id.in_(invoice_ids[offset : offset + _CHUNK]),
            )
            .order_by(Event.id)
        )
        for invoice_id, payload in session.execute(query):
            deleted[invoice_id] = bool((payload or {}).get("deleted"))
    return {invoice_id for invoice_id, was_deleted in deleted.items() if was_deleted}
