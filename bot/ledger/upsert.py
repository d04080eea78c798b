"""The ledger: upsert a validated LedgerBatch, whatever its source: an invoice by the source's own
id where it gives one (an invoice renumbered or moved to another customer there is changed, not
stored twice), else by (customer, invoice number).

Importing the same data twice changes nothing. An invoice whose balance drops to zero becomes paid
and an Event says so; one whose balance rises again is reopened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import ValidationFailed
from bot.core.locks import serialise_ledger_writes
from bot.core.models import Customer, Event
from bot.core.vocabulary import WAITING, Channel
from bot.ledger.accounts import cancel_waiting_texts, cancel_waiting_to, waiting_messages_to
from bot.ledger.bulk import bulk_update, cycles_collected_after, insert_columns
from bot.ledger.change_words import EMAIL_CHANGED, PHONE_CHANGED
from bot.ledger.contacts import add_contacts, record_number_changes, update_contacts
from bot.ledger.invoices import upsert_invoices
from bot.ledger.screening import screen
from bot.ledger.source_payments import record_source_payments
from bot.payments.record import cancel_for_invoices, covering
from bot.planning.guardrails import NO_SMS_CONSENT
from bot.reminders import state
from integrations.base.ledger import (
    CustomerRecord,
    LedgerBatch,
    SourceProblem,
    visible,
)

# Rows are read as plain tuples of the columns compared, not ORM objects: a re-import of 100,000
# invoices compares far faster that way.
_CUSTOMER_FIELDS = (
    "name",
    "tier",
    "owner_slack_id",
    "timezone",
    "never_automate",
    "tags",
    "language",
)


@dataclass
class ImportSummary:
    source: str
    label: str
    customers_created: int = 0
    customers_updated: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    invoices_unchanged: int = 0
    invoices_paid: list[str] = field(default_factory=list)
    invoices_reopened: list[str] = field(default_factory=list)
    invoices_voided: list[str] = field(default_factory=list)
    # open invoices a full answer lacked but too many to be deleted there: none was voided
    # (bot/ledger/deleted_invoices.py)
    voids_held: list[str] = field(default_factory=list)
    # invoices voided as deleted that the source gave again, not void: open or paid again
    invoices_restored: list[str] = field(default_factory=list)
    payments_recorded: int = 0
    # invoices whose balance or status changed: their waiting reminders quote stale amounts
    changed_invoice_ids: list[int] = field(default_factory=list)
    # invoices whose due date, or else total, changed (and nothing above): their waiting
    # reminders state the old one
    due_date_changed_ids: list[int] = field(default_factory=list)
    total_changed_ids: list[int] = field(default_factory=list)
    cancelled_reminders: list[int] = field(default_factory=list)
    # customers, invoices and payments of the batch not stored (each named in its problems)
    records_skipped: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.customers_created
            or self.customers_updated
            or self.contacts_created
            or self.contacts_updated
            or self.invoices_created
            or self.invoices_updated
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "label": self.label,
            "customers_created": self.customers_created,
            "customers_updated": self.customers_updated,
            "contacts_created": self.contacts_created,
            "contacts_updated": self.contacts_updated,
            "invoices_created": self.invoices_created,
            "invoices_updated": self.invoices_updated,
            "invoices_unchanged": self.invoices_unchanged,
            "invoices_paid": len(self.invoices_paid),
            "invoices_reopened": len(self.invoices_reopened),
            "invoices_voided": len(self.invoices_voided),
            "payments_recorded": self.payments_recorded,
            "reminders_cancelled": len(self.cancelled_reminders),
            # only a sync that held voids or restored invoices says so
            **({"voids_held": len(self.voids_held)} if self.voids_held else {}),
            **(
                {"invoices_restored": len(self.invoices_restored)} if self.invoices_restored else {}
            ),
        }


def apply_batch(
    session: Session, batch: LedgerBatch, now: datetime, *, all_or_nothing: bool = False
) -> ImportSummary:
    """Upsert the batch inside the caller's transaction (all of it or, on error, none of it).
    First the batch is screened (bot/ledger/screening.py): a record it must not store is taken
    out and added to batch.problems, and so is an invoice whose customer is neither in the batch
    nor stored from this source. The rest is stored, and the caller reports the problems (an
    accounting sync), unless `all_or_nothing` (a ledger file: a file with any bad row imports
    nothing): then any problem raises ValidationFailed naming the batch's label and listing them
    all, before anything is written (an unknown customer, known only once the customers are
    written, raises then, and the caller's transaction takes back what was written).

    A customer, invoice or payment not stored is counted in `summary.records_skipped`; a sync
    fetches each again (bot/ledger/sync.py), so a customer fixed in the source brings back the
    invoices skipped with it, which the source has not changed."""
    with cycles_collected_after():
        return _apply(session, batch, now, all_or_nothing)


def _apply(
    session: Session, batch: LedgerBatch, now: datetime, all_or_nothing: bool
) -> ImportSummary:
    summary = ImportSummary(source=batch.source, label=batch.label)
    screen(batch)
    if all_or_nothing:
        _refuse_problems(batch)
    serialise_ledger_writes(session)
    customer_ids = _upsert_customers(session, batch, now, summary)
    _take_out_unknown_customers(batch, customer_ids)
    if all_or_nothing:
        _refuse_problems(batch)
    summary.records_skipped = len(skipped_records(batch))
    contacts = add_contacts(session, batch, customer_ids, now, summary)
    upsert_invoices(session, batch, customer_ids, now, summary)
    if batch.payments:
        record_source_payments(session, batch, customer_ids, now, summary)
    # The reminders cancelled below, whatever the reason, are locked first, all in one ordered
    # pass (each cancel in turn would take them out of order), and before any contact changes
    # (a message's change comes before its contact's everywhere).
    changed_invoice_ids = [
        *summary.changed_invoice_ids,
        *summary.due_date_changed_ids,
        *summary.total_changed_ids,
    ]
    state.lock_cancellable(
        session,
        [
            *covering(session, changed_invoice_ids),
            *waiting_messages_to([*contacts.consent_dropped, *contacts.renumbered], contacts.moved),
        ],
        WAITING,
    )
    update_contacts(session, contacts)
    # Paid, voided or changed in the ledger: what still waits to be sent is stale.
    summary.cancelled_reminders = cancel_for_invoices(session, summary.changed_invoice_ids, now)
    # No more consent to texts (withdrawn, or given for a phone number the ledger replaced): what
    # still waits to be texted to them goes no further (as a STOP reply stops it).
    texts_cancelled = cancel_waiting_texts(session, contacts.consent_dropped, NO_SMS_CONSENT, now)
    # Another phone number, even with consent of its own: what waits to be texted was written
    # and approved for the old one, and would go to the new one (a reminder names its contact,
    # not the number). The phone change's Event names what it stopped, for either reason.
    texts_cancelled += cancel_waiting_texts(session, list(contacts.renumbered), PHONE_CHANGED, now)
    record_number_changes(session, contacts, texts_cancelled, now)
    summary.cancelled_reminders += texts_cancelled
    # Another email address: what waits to be emailed was written and approved for the old one,
    # which the ledger no longer has (the contact's next message goes to the new one).
    summary.cancelled_reminders += cancel_waiting_to(
        session, contacts.moved, Channel.EMAIL, EMAIL_CHANGED, now
    )
    for changed, invoice_ids in (
        ("due_date_changed", summary.due_date_changed_ids),
        ("total_changed", summary.total_changed_ids),
    ):
        summary.cancelled_reminders += cancel_for_invoices(
            session, invoice_ids, now, changed=changed
        )
    if summary.changed:
        audit.record(session, now, "ledger.imported", payload=summary.as_dict())
    return summary


def _refuse_problems(batch: LedgerBatch) -> None:
    if batch.problems:
        raise ValidationFailed(batch.label, [problem.message for problem in batch.problems])


def skipped_records(batch: LedgerBatch) -> set[tuple[str, str | None]]:
    """The customers, invoices and payments the batch's problems say are not stored, each as
    (kind, the source's id) (a problem about a customer that is still in the batch, such as a
    contact left out, is not)."""
    if not batch.problems:
        return set()
    kept_customers = set(map(visible, batch.customers))
    return {
        (problem.kind, problem.external_id)
        for problem in batch.problems
        if problem.kind != "customer" or problem.external_id not in kept_customers
    }


def _take_out_unknown_customers(batch: LedgerBatch, customer_ids: dict[str, int]) -> None:
    if customer_ids.keys() >= set(map(attrgetter("customer_external_id"), batch.invoices)):
        return  # the usual case: every invoice's customer is known
    kept = []
    for invoice in batch.invoices:
        if invoice.customer_external_id in customer_ids:
            kept.append(invoice)
            continue
        batch.problems.append(
            SourceProblem(
                "invoice",
                visible(invoice.external_id or invoice.number),
                f"invoice {visible(invoice.number)}, customer: "
                f"{visible(invoice.customer_external_id)} is not a customer in {batch.label} "
                "or in the ledger; the invoice is not stored",
            )
        )
    batch.invoices = kept


def _new_customers(
    source: str,
    new: list[tuple[str, CustomerRecord]],
    currency_of: dict[str, str],
    mixed: set[str],
    now: datetime,
) -> dict[str, list[Any]]:
    """The new customers' rows, column by column (no dict for each customer)."""
    count = len(new)
    records = [record for _external_id, record in new]
    external_ids = [external_id for external_id, _record in new]
    return {
        "source": [source] * count,
        "external_id": external_ids,
        "name": [record.name for record in records],
        "tier": [record.tier or "standard" for record in records],
        "owner_slack_id": [record.owner_slack_id for record in records],
        "timezone": [record.timezone for record in records],
        "never_automate": [bool(record.never_automate) for record in records],
        "tags": [record.tags or [] for record in records],
        "language": [record.language for record in records],
        "currency": [
            None if external_id in mixed else currency_of.get(external_id)
            for external_id in external_ids
        ],
        "created_at": [now] * count,
        "updated_at": [now] * count,
    }


def _customer_changes(stored: Row[Any], record: CustomerRecord) -> dict[str, Any]:
    wanted: dict[str, Any] = {"name": record.name}
    for column in _CUSTOMER_FIELDS[1:]:
        value = getattr(record, column)
        if value is not None:  # not given by this source: keep what a person or source set
            wanted[column] = value
    return {k: v for k, v in wanted.items() if getattr(stored, k) != v}


def _upsert_customers(
    session: Session, batch: LedgerBatch, now: datetime, summary: ImportSummary
) -> dict[str, int]:
    columns = (Customer.id, Customer.external_id, *(getattr(Customer, c) for c in _CUSTOMER_FIELDS))
    stored = {
        c.external_id: c
        for c in session.connection()
        .execute(select(*columns).where(Customer.source == batch.source))
        .all()
    }
    ids = {external_id: c.id for external_id, c in stored.items()}
    # each customer's one currency, when all its invoices are in one
    currency_of: dict[str, str] = {}
    mixed: set[str] = set()
    invoices = batch.invoices
    # each (customer, currency) pair once: a customer's invoices are mostly in one currency
    for external_id, currency in set(
        zip(
            map(attrgetter("customer_external_id"), invoices),
            map(attrgetter("currency"), invoices),
            strict=True,
        )
    ):
        if currency_of.setdefault(external_id, currency) != currency:
            mixed.add(external_id)
    new: list[tuple[str, CustomerRecord]] = []
    updates: list[dict[str, Any]] = []
    for external_id, record in batch.customers.items():
        existing = stored.get(external_id)
        if existing is None:
            new.append((external_id, record))
            continue
        changes = _customer_changes(existing, record)
        if changes:
            updates.append({"id": existing.id, "updated_at": now, **changes})
    insert_columns(session, Customer, _new_customers(batch.source, new, currency_of, mixed, now))
    if new:
        added = {external_id for external_id, _record in new}
        for row_id, external_id in session.connection().execute(
            select(Customer.id, Customer.external_id).where(Customer.source == batch.source)
        ):
            if external_id in added:
                ids[external_id] = row_id
        count = len(new)
        # one payload for every customer added: the same dict, made JSON text once
        payload = {"source": batch.source, "from": batch.label}
        insert_columns(
            session,
            Event,
            {
                "at": [now] * count,
                "actor": [audit.SYSTEM] * count,
                "kind": ["customer.added"] * count,
                "customer_id": [ids[external_id] for external_id, _record in new],
                "invoice_id": [None] * count,
                "reminder_id": [None] * count,
                "payload": [payload] * count,
            },
        )
    bulk_update(session, Customer, updates)
    summary.customers_created = len(new)
    summary.customers_updated = len(updates)
    return ids
