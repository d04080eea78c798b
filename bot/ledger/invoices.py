"""Invoices of a ledger import: new ones inserted, changed ones updated in bulk, each change an
Event (paid, reopened, balance, due date, total or issue date changed, paid day corrected,
renumbered or moved to another customer by the source). A stored invoice is found by the source's
own id where the source gives one, else by its customer and number. A payment arbot recorded
itself is never undone by an export that has not caught up with it."""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import read_rows
from bot.core.models import Customer, Event, Invoice, Payment, PaymentAllocation
from bot.ledger.bulk import bulk_update, insert_columns, insert_rows
from bot.ledger.deleted_invoices import Deletions, find_deleted, void_deleted, voided_as_deleted
from integrations.base.ledger import InvoiceRecord, LedgerBatch, SourceProblem, visible

if TYPE_CHECKING:
    from bot.ledger.upsert import ImportSummary

ARBOT_PAYMENT_SOURCES = ("stripe", "bank")
_NUMBER_LENGTH: int = getattr(Invoice.__table__.c["number"].type, "length", None) or 64
# Rows are read as plain tuples of the columns compared, not ORM objects: a re-import of 100,000
# invoices compares far faster that way.
_INVOICE_FIELDS = (
    "id",
    "payment_link",
    "document_url",
    "customer_id",
    "number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "balance",
    "status",
    "paid_at",
    "source",
    "external_id",
)
_StoredInvoice = namedtuple("_StoredInvoice", _INVOICE_FIELDS)  # type: ignore[misc]
_CUSTOMER_ID = _INVOICE_FIELDS.index("customer_id")
_NUMBER = _INVOICE_FIELDS.index("number")
_PAID_AT = _INVOICE_FIELDS.index("paid_at")
_SOURCE = _INVOICE_FIELDS.index("source")
_EXTERNAL_ID = _INVOICE_FIELDS.index("external_id")
_STATUS = _INVOICE_FIELDS.index("status")
# issue_date, due_date, currency, total, balance: what a re-import compares first
_COMPARED = slice(_INVOICE_FIELDS.index("issue_date"), _INVOICE_FIELDS.index("balance") + 1)
# the columns whose few distinct values are held once (dates, currencies, statuses)
_SHARED = tuple(
    _INVOICE_FIELDS.index(name)
    for name in ("issue_date", "due_date", "currency", "status", "source")
)


def upsert_invoices(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    wanted_ids = set(
        map(customer_ids.__getitem__, map(attrgetter("customer_external_id"), batch.invoices))
    )
    stored: dict[tuple[int, str], tuple[Any, ...]] = {}
    # The source's own ids (a CSV gives none): an invoice renumbered or moved to another customer
    # there is found by its id, wherever it is stored.
    wanted_external = set(filter(None, map(attrgetter("external_id"), batch.invoices)))
    by_external: dict[str, list[tuple[Any, ...]]] = {}
    invoice_columns = [getattr(Invoice, c) for c in _INVOICE_FIELDS]
    # Read through the driver: plain tuples, each distinct date, currency or amount converted
    # once, without SQLAlchemy's work per row.
    for invoice in read_rows(session, select(*invoice_columns), shared=_SHARED):
        if invoice[_CUSTOMER_ID] in wanted_ids:
            stored[(invoice[_CUSTOMER_ID], invoice[_NUMBER])] = invoice
        if invoice[_EXTERNAL_ID] in wanted_external and invoice[_SOURCE] == batch.source:
            by_external.setdefault(invoice[_EXTERNAL_ID], []).append(invoice)
    # Invoices a payment arbot itself recorded (Stripe, the bank feed) paid: a ledger export
    # that has not caught up must not reopen them. The ledger's own payments do not count.
    allocated = set(
        session.scalars(
            select(PaymentAllocation.invoice_id)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(Payment.source.in_(ARBOT_PAYMENT_SOURCES))
            .distinct()
        )
    )
    new: list[InvoiceRecord] = []
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    renumbered: list[dict[str, Any]] = []
    # decided before matching: an invoice voided as deleted gives its number up in this batch
    deletions = (
        find_deleted(session, batch) if batch.deleted_invoices or batch.complete else Deletions()
    )
    if stored or by_external:
        matches, freed, kept_by = _match_all(
            batch.invoices, customer_ids, stored, by_external, batch, deletions.lacking
        )
        _skip_numbers_kept(batch, matches, kept_by, summary)
        # a deleted or void invoice gives its number up to another of its source
        for row in freed:
            renumbered.append({"id": row[0], "number": _freed_number(row)})
            events.append(_gave_number_up(row, now))
    else:  # a new book: every invoice is new
        new, matches = batch.invoices, []
    # Invoices voided as deleted that the source gives again, not void: restored below
    restorable = voided_as_deleted(
        session,
        [
            found[0]
            for record, found in zip(batch.invoices if matches else (), matches, strict=True)
            if found is not None and found[_STATUS] == "void" and record.status != "void"
        ],
    )
    for record, found in zip(batch.invoices if matches else (), matches, strict=True):
        if found is None:
            new.append(record)
            continue
        customer_id = customer_ids[record.customer_external_id]
        restoring = found[0] in restorable
        if (found[_CUSTOMER_ID], found[_NUMBER]) != (customer_id, record.number):
            # renumbered or moved to another customer in the source: what waits to be sent
            # quotes the old number or goes to the old customer
            moving: Any = _StoredInvoice._make(found)
            events.append(_renumbered(moving, record, customer_id, now))
            moved = {"customer_id": customer_id, "number": record.number}
            changes = {
                **_invoice_changes(moving, record, now, moving.id in allocated, restoring),
                **moved,
            }
            renumbered.append({"id": moving.id, "number": f"renumbering {moving.id}"})
            updates.append({"id": moving.id, "updated_at": now, **changes})
            summary.changed_invoice_ids.append(moving.id)
            events.extend(_invoice_events(moving._replace(**moved), record, changes, now, summary))
            continue
        if (
            found[_COMPARED]
            == (
                record.issue_date,
                record.due_date,
                record.currency,
                record.total,
                record.balance,
            )
            and record.payment_link is None
            and record.document_url is None
            and record.status is None
            and (record.paid_at is None or record.paid_at == found[_PAID_AT])
            and not restoring
        ):  # the usual case of a re-import, decided without a look at each field
            summary.invoices_unchanged += 1
            continue
        existing: Any = _StoredInvoice._make(found)
        if not restoring and _unchanged(existing, record):
            summary.invoices_unchanged += 1
            continue
        changes = _invoice_changes(existing, record, now, existing.id in allocated, restoring)
        if not changes:
            summary.invoices_unchanged += 1
            continue
        updates.append({"id": existing.id, "updated_at": now, **changes})
        # The waiting reminders of the invoice state what changed: they are cancelled after.
        if {"balance", "status"} & changes.keys():
            summary.changed_invoice_ids.append(existing.id)
        elif "due_date" in changes:
            summary.due_date_changed_ids.append(existing.id)
        elif "total" in changes:
            summary.total_changed_ids.append(existing.id)
        events.extend(_invoice_events(existing, record, changes, now, summary))
    _name_former_customers(session, events)
    # Renumbered invoices leave their numbers first: one may take a number another leaves, and
    # a new invoice may take one (a customer's numbers are unique at every statement).
    bulk_update(session, Invoice, renumbered)
    bulk_update(session, Invoice, updates)
    insert_columns(session, Invoice, _new_invoices(batch.source, new, customer_ids, now))
    insert_rows(session, Event, events)
    summary.invoices_created = len(new)
    summary.invoices_updated = len(updates)
    if batch.deleted_invoices or batch.complete:
        void_deleted(session, batch, now, summary, deletions)


def _match_all(
    records: list[InvoiceRecord],
    customer_ids: dict[str, int],
    stored: dict[tuple[int, str], tuple[Any, ...]],
    by_external: dict[str, list[tuple[Any, ...]]],
    batch: LedgerBatch,
    lacking: set[str],
) -> tuple[list[tuple[Any, ...] | None], list[tuple[Any, ...]], list[tuple[Any, ...] | None]]:
    """The stored invoice each record is, or None for a new one; the stored invoices whose
    numbers are freed for another; and, for each record, the stored invoice of another id of the
    source that keeps the record's number (then the record is not stored).

    First by the source's own id: the stored invoice of this source with that id (the one under
    the record's customer and number, if several are), however it is numbered now; then, for the
    other records, the one under the record's customer and number, unless that one is moving
    away (then the record is new). Each stored invoice keeps its source's id. A customer and
    number another invoice of the source holds is free only when that one leaves it in the same
    batch, is deleted there (named so, or lacking from a complete answer, in `lacking`, when its
    void is not held) or is void: then it gives it up (`_freed_number`). An invoice moving
    to a number a stored invoice of another source keeps is matched to that one instead, as when
    ids were not compared (the two cannot share it)."""
    found: list[tuple[Any, ...] | None] = [None] * len(records)
    kept_by: list[tuple[Any, ...] | None] = [None] * len(records)
    freed: dict[int, tuple[Any, ...]] = {}
    keys = [(customer_ids[r.customer_external_id], r.number) for r in records]
    taken: set[int] = set()  # the stored invoices matched by their ids
    for index, record in enumerate(records):
        same_id = by_external.get(record.external_id or "")
        if not same_id:
            continue
        at_key = stored.get(keys[index])
        if at_key is not None and at_key[0] in {row[0] for row in same_id}:
            chosen: tuple[Any, ...] | None = at_key
        else:
            chosen = min((row for row in same_id if row[0] not in taken), default=None)
        if chosen is not None and chosen[0] not in taken:
            taken.add(chosen[0])
            found[index] = chosen
    deleted = set(batch.deleted_invoices) | lacking

    def another_of_the_source(record: InvoiceRecord, holder: tuple[Any, ...]) -> bool:
        return (
            record.external_id is not None
            and holder[_SOURCE] == batch.source
            and holder[_EXTERNAL_ID] != record.external_id
        )

    def gives_up(holder: tuple[Any, ...]) -> bool:
        """Whether a stored invoice no record takes frees its number: deleted or void."""
        return holder[_EXTERNAL_ID] in deleted or holder[_INVOICE_FIELDS.index("status")] == "void"

    settled = False
    while not settled:  # a number another invoice keeps is not free to move to
        settled = True
        for index, key in enumerate(keys):
            row, at_key = found[index], stored.get(key)
            if row is None or at_key is None or at_key[0] == row[0] or at_key[0] in taken:
                continue
            if at_key[0] in freed:
                continue
            if another_of_the_source(records[index], at_key):
                if gives_up(at_key):
                    freed[at_key[0]] = at_key
                else:  # the source has two invoices of one number: this one is not stored
                    taken.discard(row[0])
                    found[index], kept_by[index] = None, at_key
                    settled = False
                continue
            taken.discard(row[0])
            taken.add(at_key[0])
            found[index] = at_key
            settled = False
    for index, key in enumerate(keys):
        at_key = stored.get(key)
        if found[index] is not None or kept_by[index] is not None or at_key is None:
            continue
        if at_key[0] in taken or at_key[0] in freed:
            continue
        if another_of_the_source(records[index], at_key):
            if gives_up(at_key):
                freed[at_key[0]] = at_key  # and the record is a new invoice
            else:
                kept_by[index] = at_key
            continue
        found[index] = at_key
    return found, list(freed.values()), kept_by


def _skip_numbers_kept(
    batch: LedgerBatch,
    matches: list[tuple[Any, ...] | None],
    kept_by: list[tuple[Any, ...] | None],
    summary: ImportSummary,
) -> None:
    """Take out of the batch (and `matches`) each record whose number another stored invoice of
    its source keeps, each named in a problem: the next sync fetches it again."""
    if not any(kept_by):
        return
    kept_records, kept_matches = [], []
    for record, found, holder in zip(batch.invoices, matches, kept_by, strict=True):
        if holder is None:
            kept_records.append(record)
            kept_matches.append(found)
            continue
        batch.problems.append(_number_kept(record, holder, batch.label))
        summary.records_skipped += 1
    batch.invoices, matches[:] = kept_records, kept_matches


def _freed_number(holder: tuple[Any, ...]) -> str:
    """The number a deleted or void invoice takes when it gives its own up to another invoice of
    its source: the old one, marked, and unique under the customer by the source's id."""
    mark = f" (deleted, id {holder[_EXTERNAL_ID]})"
    return f"{holder[_NUMBER][: _NUMBER_LENGTH - len(mark)]}{mark}"


def _gave_number_up(holder: tuple[Any, ...], now: datetime) -> dict[str, Any]:
    """The Event of a deleted or void invoice that gave its number up to another."""
    return {
        "at": now,
        "actor": audit.SYSTEM,
        "kind": "invoice.renumbered",
        "customer_id": holder[_CUSTOMER_ID],
        "invoice_id": holder[0],
        "reminder_id": None,
        "payload": {
            "source": holder[_SOURCE],
            "external_id": holder[_EXTERNAL_ID],
            "number_before": holder[_NUMBER],
            "number_after": _freed_number(holder),
            "customer_before": holder[_CUSTOMER_ID],
            "customer_after": holder[_CUSTOMER_ID],
        },
    }


def _number_kept(record: InvoiceRecord, holder: tuple[Any, ...], label: str) -> SourceProblem:
    return SourceProblem(
        "invoice",
        visible(record.external_id or record.number),
        f"invoice {visible(record.number)} of customer {visible(record.customer_external_id)}, "
        f"has the number of invoice id {visible(holder[_EXTERNAL_ID])} of {label}, stored in "
        "the ledger; the ledger holds one invoice per number and customer, so it is not "
        f"stored: give one of the two another number in {label}",
    )


def _renumbered(
    stored: Any, record: InvoiceRecord, customer_id: int, now: datetime
) -> dict[str, Any]:
    """The Event of an invoice the source renumbered or moved to another customer (in the
    history of the customer it is now under)."""
    moved = stored.customer_id != customer_id
    return {
        "at": now,
        "actor": audit.SYSTEM,
        "kind": "invoice.moved" if moved else "invoice.renumbered",
        "customer_id": customer_id,
        "invoice_id": stored.id,
        "reminder_id": None,
        "payload": {
            "source": stored.source,
            "external_id": record.external_id,
            "number_before": stored.number,
            "number_after": record.number,
            "customer_before": stored.customer_id,
            "customer_after": customer_id,
        },
    }


def _name_former_customers(session: Session, events: list[dict[str, Any]]) -> None:
    """Each moved invoice's Event names the customer it was under (read only when any moved)."""
    moved = [event["payload"] for event in events if event["kind"] == "invoice.moved"]
    if not moved:
        return
    former = {payload["customer_before"] for payload in moved}
    names = {
        customer_id: name
        for customer_id, name in session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_(former))
        )
    }
    for payload in moved:
        payload["customer_before_name"] = names.get(payload["customer_before"])


def _new_invoices(
    source: str, records: list[InvoiceRecord], customer_ids: dict[str, int], now: datetime
) -> dict[str, list[Any]]:
    """The new invoices' rows, column by column (a whole book's worth without a dict each)."""

    def each(field: str) -> list[Any]:
        return list(map(attrgetter(field), records))

    numbers = each("number")
    balances = each("balance")
    statuses = ["open" if balance else "paid" for balance in balances]  # a zero is falsy
    given = each("status")
    if any(given):  # a ledger that marks invoices (void); a CSV's never does
        for index, status in enumerate(given):
            if status == "void":
                statuses[index] = "void"
    return {
        "customer_id": list(map(customer_ids.__getitem__, each("customer_external_id"))),
        "source": [source] * len(records),
        "external_id": [
            external_id or number
            for external_id, number in zip(each("external_id"), numbers, strict=True)
        ],
        "number": numbers,
        "issue_date": each("issue_date"),
        "due_date": each("due_date"),
        "currency": each("currency"),
        "total": each("total"),
        "balance": balances,
        "status": statuses,
        "paid_at": [
            (paid_at or now) if status == "paid" else None
            for status, paid_at in zip(statuses, each("paid_at"), strict=True)
        ],
        "payment_link": each("payment_link"),
        "document_url": each("document_url"),
        "created_at": [now] * len(records),
        "updated_at": [now] * len(records),
    }


def _unchanged(stored: Any, record: InvoiceRecord) -> bool:
    """The quick answer for the usual case: the record says what is stored (what
    `_invoice_changes` would find no change in)."""
    return (
        stored.balance == record.balance
        and stored.due_date == record.due_date
        and stored.total == record.total
        and stored.issue_date == record.issue_date
        and stored.currency == record.currency
        and (record.payment_link is None or record.payment_link == stored.payment_link)
        and (record.document_url is None or record.document_url == stored.document_url)
        and (record.status != "void" or stored.status == "void")
        and (record.paid_at is None or record.paid_at == stored.paid_at)
    )


def _invoice_changes(
    stored: Any,
    record: InvoiceRecord,
    now: datetime,
    paid_by_payment: bool,
    restoring: bool = False,
) -> dict[str, Any]:
    balance = record.balance
    paid_before = stored.total - stored.balance
    if paid_by_payment and record.total - record.balance < paid_before:
        # arbot recorded a payment (Stripe, the bank feed) the ledger has not caught up with: its
        # balance would quote money already paid. What is owed is the ledger's total less what
        # is stored as paid (while the total stays, the stored balance).
        balance = max(record.total - paid_before, Decimal(0))
        if stored.status == "paid" and balance == 0 and record.total == stored.total:
            return {}
    wanted: dict[str, Any] = {
        "issue_date": record.issue_date,
        "due_date": record.due_date,
        "currency": record.currency,
        "total": record.total,
        "balance": balance,
    }
    if record.payment_link is not None:
        wanted["payment_link"] = record.payment_link
    if record.document_url is not None:  # an empty pdf_url keeps the address stored
        wanted["document_url"] = record.document_url
    changes = {k: v for k, v in wanted.items() if getattr(stored, k) != v}
    if record.status == "void":
        if stored.status != "void":
            changes["status"] = "void"
        return changes
    if restoring:  # voided as deleted, and the source has it after all: as it says now
        if balance > 0:
            changes.update(status="open", paid_at=None)
        else:
            changes.update(status="paid", paid_at=record.paid_at or stored.paid_at or now)
        return changes
    if "balance" in changes and stored.status in ("open", "paid"):
        if balance == 0 and stored.status == "open":
            changes.update(status="paid", paid_at=record.paid_at or now)
        elif balance > 0 and stored.status == "paid":
            changes.update(status="open", paid_at=None)
    elif (
        stored.status == "paid"
        and not paid_by_payment  # a recorded payment's own instant is the better one
        and record.paid_at is not None
        and record.balance == 0
        and record.paid_at != stored.paid_at
    ):  # the ledger says it was paid on another day than the one stored
        changes["paid_at"] = record.paid_at
    return changes


def _invoice_events(
    stored: Any,
    record: InvoiceRecord,
    changes: dict[str, Any],
    now: datetime,
    summary: ImportSummary,
) -> list[dict[str, Any]]:
    base = {
        "at": now,
        "actor": audit.SYSTEM,
        "customer_id": stored.customer_id,
        "invoice_id": stored.id,
        "reminder_id": None,
    }
    money = {
        "number": stored.number,
        "currency": record.currency,
        "balance_before": str(stored.balance),
        "balance_after": str(changes.get("balance", record.balance)),
    }
    events = []
    # First what happened to the balance or the status (one Event), then each other change.
    if stored.status == "void" and changes.get("status") in ("open", "paid"):
        summary.invoices_restored.append(stored.number)
        restored = {**money, "status_after": changes["status"], "source": stored.source}
        events.append({**base, "kind": "invoice.restored", "payload": restored})
    elif changes.get("status") == "void":
        summary.invoices_voided.append(stored.number)
        events.append({**base, "kind": "invoice.voided", "payload": {**money, "source": "ledger"}})
    elif changes.get("status") == "paid":
        summary.invoices_paid.append(stored.number)
        paid = {**money, "source": "ledger import"}
        events.append({**base, "kind": "invoice.paid", "payload": paid})
    elif changes.get("status") == "open":
        summary.invoices_reopened.append(stored.number)
        events.append({**base, "kind": "invoice.reopened", "payload": money})
    elif "balance" in changes:
        events.append({**base, "kind": "invoice.balance_changed", "payload": money})
    elif "paid_at" in changes:
        before = stored.paid_at
        payload = {
            "number": stored.number,
            "paid_before": None if before is None else before.isoformat(),
            "paid_after": changes["paid_at"].isoformat(),
        }
        events.append({**base, "kind": "invoice.paid_at_changed", "payload": payload})
    if "due_date" in changes:
        payload = {
            "number": stored.number,
            "due_before": stored.due_date.isoformat(),
            "due_after": record.due_date.isoformat(),
        }
        events.append({**base, "kind": "invoice.due_date_changed", "payload": payload})
    if "total" in changes:
        payload = {
            "number": stored.number,
            "currency": record.currency,
            "total_before": str(stored.total),
            "total_after": str(record.total),
        }
        events.append({**base, "kind": "invoice.total_changed", "payload": payload})
    if "issue_date" in changes:
        payload = {
            "number": stored.number,
            "issue_before": stored.issue_date.isoformat(),
            "issue_after": record.issue_date.isoformat(),
        }
        events.append({**base, "kind": "invoice.issue_date_changed", "payload": payload})
    return events
