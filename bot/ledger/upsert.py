"""The ledger: upsert a validated LedgerBatch, whatever its source, by (customer, invoice number).

Importing the same data twice changes nothing. An invoice whose balance drops to zero becomes paid
and an Event says so; one whose balance rises again is reopened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.locks import serialise_ledger_writes
from bot.core.models import Contact, Customer, Invoice, Payment, PaymentAllocation
from bot.payments.record import cancel_for_invoices
from integrations.base import ContactRecord, CustomerRecord, InvoiceRecord, LedgerBatch

_CHUNK = 5000
ARBOT_PAYMENT_SOURCES = ("stripe", "bank")
# Rows are read as plain tuples of the columns compared, not ORM objects: a re-import of 100,000
# invoices compares far faster that way.
_CUSTOMER_FIELDS = ("name", "tier", "owner_slack_id", "timezone", "never_automate", "tags")
_CONTACT_FIELDS = ("id", "customer_id", "name", "email", "phone", "sms_consent")
_INVOICE_FIELDS = (
    "id",
    "payment_link",
    "customer_id",
    "number",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "balance",
    "status",
)  # rows per bulk statement; keeps parameter lists well inside driver limits


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
    payments_recorded: int = 0
    # invoices whose balance or status changed: their waiting reminders quote stale amounts
    changed_invoice_ids: list[int] = field(default_factory=list)
    cancelled_reminders: list[int] = field(default_factory=list)

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
        }


def apply_batch(session: Session, batch: LedgerBatch, now: datetime) -> ImportSummary:
    """Upsert the batch inside the caller's transaction (all of it or, on error, none of it)."""
    summary = ImportSummary(source=batch.source, label=batch.label)
    serialise_ledger_writes(session)
    customer_ids = _upsert_customers(session, batch, now, summary)
    _upsert_contacts(session, batch, customer_ids, now, summary)
    _upsert_invoices(session, batch, customer_ids, now, summary)
    if batch.payments:
        _record_payments(session, batch, customer_ids, now, summary)
    # Paid, voided or changed in the ledger: what still waits to be sent is stale.
    summary.cancelled_reminders = cancel_for_invoices(session, summary.changed_invoice_ids, now)
    if summary.changed:
        audit.record(session, now, "ledger.imported", payload=summary.as_dict())
    return summary


def _table(model: type[Any]) -> Table:
    """The Core table: bulk inserts through it are batched by the driver (executemany)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]


def _bulk_update(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        session.execute(update(model), chunk)


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
        for c in session.execute(select(*columns).where(Customer.source == batch.source))
    }
    ids = {external_id: c.id for external_id, c in stored.items()}
    currencies: dict[str, set[str]] = {}
    for invoice in batch.invoices:
        currencies.setdefault(invoice.customer_external_id, set()).add(invoice.currency)
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for external_id, record in batch.customers.items():
        existing = stored.get(external_id)
        if existing is None:
            only = currencies.get(external_id, set())
            new_rows.append(
                {
                    "source": batch.source,
                    "external_id": external_id,
                    "name": record.name,
                    "tier": record.tier or "standard",
                    "owner_slack_id": record.owner_slack_id,
                    "timezone": record.timezone,
                    "never_automate": bool(record.never_automate),
                    "tags": record.tags or [],
                    "currency": next(iter(only)) if len(only) == 1 else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        changes = _customer_changes(existing, record)
        if changes:
            updates.append({"id": existing.id, "updated_at": now, **changes})
    for chunk in _chunks(new_rows):
        returned = session.execute(
            insert(_table(Customer)).returning(
                _table(Customer).c.id,
                _table(Customer).c.external_id,
                sort_by_parameter_order=True,
            ),
            chunk,
        )
        added = []
        for row_id, external_id in returned:
            ids[external_id] = row_id
            added.append(
                {
                    "at": now,
                    "actor": audit.SYSTEM,
                    "kind": "customer.added",
                    "customer_id": row_id,
                    "invoice_id": None,
                    "reminder_id": None,
                    "payload": {"source": batch.source, "from": batch.label},
                }
            )
        audit.record_many(session, added)
    _bulk_update(session, Customer, updates)
    summary.customers_created = len(new_rows)
    summary.customers_updated = len(updates)
    return ids


def _contact_changes(stored: Row[Any], record: ContactRecord, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if record.name and stored.name != record.name:
        changes["name"] = record.name
    if record.email and stored.email != record.email:
        changes["email"] = record.email
    if record.phone and stored.phone != record.phone:
        changes["phone"] = record.phone
    if record.sms_consent and not stored.sms_consent:
        changes.update(
            sms_consent=True, sms_consent_at=now, sms_consent_source=record.consent_source
        )
    return changes


def _upsert_contacts(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    by_customer: dict[int, list[Row[Any]]] = {}
    wanted_ids = {customer_ids[external_id] for external_id in batch.customers}
    contact_columns = [getattr(Contact, c) for c in _CONTACT_FIELDS]
    for stored in session.execute(select(*contact_columns)):
        if stored.customer_id in wanted_ids:
            by_customer.setdefault(stored.customer_id, []).append(stored)
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for external_id, record in batch.customers.items():
        customer_id = customer_ids[external_id]
        known = by_customer.get(customer_id, [])
        for contact in record.contacts:
            existing = _match_contact(known, contact)
            if existing is None:
                new_rows.append(
                    {
                        "customer_id": customer_id,
                        "name": contact.name,
                        "email": contact.email,
                        "phone": contact.phone,
                        "role": "billing",
                        "timezone": record.timezone,
                        "sms_consent": contact.sms_consent,
                        "sms_consent_at": now if contact.sms_consent else None,
                        "sms_consent_source": contact.consent_source,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                continue
            changes = _contact_changes(existing, contact, now)
            if changes:
                updates.append({"id": existing.id, "updated_at": now, **changes})
    for chunk in _chunks(new_rows):
        session.execute(insert(_table(Contact)), chunk)
    _bulk_update(session, Contact, updates)
    summary.contacts_created = len(new_rows)
    summary.contacts_updated = len(updates)


def _match_contact(known: list[Row[Any]], record: ContactRecord) -> Row[Any] | None:
    """Same person: same email (case-insensitive), else same phone when neither has an email."""
    for contact in known:
        if record.email and contact.email and contact.email.lower() == record.email.lower():
            return contact
    for contact in known:
        if record.phone and contact.phone == record.phone and not (record.email and contact.email):
            return contact
    return None


def _upsert_invoices(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    wanted_ids = set(customer_ids[i.customer_external_id] for i in batch.invoices)
    stored: dict[tuple[int, str], Row[Any]] = {}
    invoice_columns = [getattr(Invoice, c) for c in _INVOICE_FIELDS]
    for invoice in session.execute(select(*invoice_columns)):
        if invoice.customer_id in wanted_ids:
            stored[(invoice.customer_id, invoice.number)] = invoice
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
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for record in batch.invoices:
        customer_id = customer_ids[record.customer_external_id]
        existing = stored.get((customer_id, record.number))
        if existing is None:
            new_rows.append(_new_invoice(batch.source, customer_id, record, now))
            continue
        changes = _invoice_changes(existing, record, now, existing.id in allocated)
        if not changes:
            summary.invoices_unchanged += 1
            continue
        updates.append({"id": existing.id, "updated_at": now, **changes})
        if {"balance", "status"} & changes.keys():
            summary.changed_invoice_ids.append(existing.id)
        events.extend(_invoice_events(existing, record, changes, now, summary))
    for chunk in _chunks(new_rows):
        session.execute(insert(_table(Invoice)), chunk)
    _bulk_update(session, Invoice, updates)
    audit.record_many(session, events)
    summary.invoices_created = len(new_rows)
    summary.invoices_updated = len(updates)


def _new_invoice(
    source: str, customer_id: int, record: InvoiceRecord, now: datetime
) -> dict[str, Any]:
    paid = record.balance == 0
    status = "void" if record.status == "void" else "paid" if paid else "open"
    return {
        "customer_id": customer_id,
        "source": source,
        "external_id": record.external_id or record.number,
        "number": record.number,
        "issue_date": record.issue_date,
        "due_date": record.due_date,
        "currency": record.currency,
        "total": record.total,
        "balance": record.balance,
        "status": status,
        "paid_at": now if status == "paid" else None,
        "payment_link": record.payment_link,
        "created_at": now,
        "updated_at": now,
    }


def _invoice_changes(
    stored: Row[Any], record: InvoiceRecord, now: datetime, paid_by_payment: bool
) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        "issue_date": record.issue_date,
        "due_date": record.due_date,
        "currency": record.currency,
        "total": record.total,
        "balance": record.balance,
    }
    if record.payment_link is not None:
        wanted["payment_link"] = record.payment_link
    changes = {k: v for k, v in wanted.items() if getattr(stored, k) != v}
    if paid_by_payment and record.balance > stored.balance:
        # arbot recorded a payment (Stripe, the bank feed) the ledger has not caught up with:
        # its higher balance would quote money already paid, so the lower one stays.
        changes.pop("balance", None)
        if stored.status == "paid":
            return {}
    if record.status == "void":
        if stored.status != "void":
            changes["status"] = "void"
        return changes
    if "balance" in changes and stored.status in ("open", "paid"):
        if record.balance == 0 and stored.status == "open":
            changes.update(status="paid", paid_at=now)
        elif record.balance > 0 and stored.status == "paid":
            changes.update(status="open", paid_at=None)
    return changes


def _invoice_events(
    stored: Row[Any],
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
        "balance_after": str(record.balance),
    }
    if changes.get("status") == "void":
        summary.invoices_voided.append(stored.number)
        return [{**base, "kind": "invoice.voided", "payload": {**money, "source": "ledger"}}]
    if changes.get("status") == "paid":
        summary.invoices_paid.append(stored.number)
        return [{**base, "kind": "invoice.paid", "payload": {**money, "source": "ledger import"}}]
    if changes.get("status") == "open":
        summary.invoices_reopened.append(stored.number)
        return [{**base, "kind": "invoice.reopened", "payload": money}]
    if "balance" in changes:
        return [{**base, "kind": "invoice.balance_changed", "payload": money}]
    if "due_date" in changes:
        payload = {
            "number": stored.number,
            "due_before": stored.due_date.isoformat(),
            "due_after": record.due_date.isoformat(),
        }
        return [{**base, "kind": "invoice.due_date_changed", "payload": payload}]
    return []


def _record_payments(
    session: Session,
    batch: LedgerBatch,
    customer_ids: dict[str, int],
    now: datetime,
    summary: ImportSummary,
) -> None:
    """The source's own payments, kept for the account's history. The ledger's balances already
    include them, so they are recorded with their allocations but change no balance."""
    known = set(
        session.scalars(
            select(Payment.external_id).where(
                Payment.source == batch.source,
                Payment.external_id.in_([p.external_id for p in batch.payments]),
            )
        )
    )
    numbers = {
        (customer_id, number): invoice_id
        for invoice_id, customer_id, number in session.execute(
            select(Invoice.id, Invoice.customer_id, Invoice.number).where(
                Invoice.customer_id.in_(set(customer_ids.values()))
            )
        )
    }
    for record in batch.payments:
        if record.external_id in known:
            continue
        customer_id = customer_ids.get(record.customer_external_id or "")
        payment = Payment(
            source=batch.source,
            external_id=record.external_id,
            customer_id=customer_id,
            received_on=record.received_on,
            amount=record.amount,
            currency=record.currency,
            reference=record.reference,
            created_at=now,
        )
        session.add(payment)
        session.flush()
        for number, amount in record.allocations:
            invoice_id = numbers.get((customer_id or 0, number))
            if invoice_id is not None and amount > 0:
                session.add(
                    PaymentAllocation(payment_id=payment.id, invoice_id=invoice_id, amount=amount)
                )
        audit.record(
            session,
            now,
            "payment.received",
            customer_id=customer_id,
            payload={
                "source": batch.source,
                "external_id": record.external_id,
                "amount": str(record.amount),
                "currency": record.currency,
                "invoices": [n for n, _ in record.allocations],
            },
        )
        summary.payments_recorded += 1
