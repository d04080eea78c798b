"""The last check of a ledger batch before it is stored, whatever its source.

A record that holds what no ledger record may (a date outside the years arbot accepts, a control
character or a bidirectional override in its text, text longer than its column holds), that
repeats one already in the batch, is taken out as a SourceProblem naming it and the field; the
rest of the batch still goes in. A customer taken out takes its invoices and payments with it.

The ledger CSV refuses all of these row by row before a batch exists, and the accounting sources
check the fields they read under their own names; this catches whatever a source leaves, so no
source can store a date that breaks the reports, a name that shows reversed in Slack, or a value
that makes PostgreSQL refuse the whole import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from operator import attrgetter
from typing import Any

from bot.core.models import Contact, Customer, Invoice, Payment
from integrations.base.ledger import (
    ContactRecord,
    CustomerRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
    date_problem,
    text_problem,
    visible,
)


def _length(model: Any, column: str) -> int | None:
    return getattr(model.__table__.c[column].type, "length", None)


# (field of the record, the most characters its column holds)
_CUSTOMER_TEXT = (
    ("external_id", _length(Customer, "external_id")),
    ("name", _length(Customer, "name")),
    ("owner_slack_id", _length(Customer, "owner_slack_id")),
    ("timezone", _length(Customer, "timezone")),
)
_CONTACT_TEXT = (
    ("name", _length(Contact, "name")),
    ("email", _length(Contact, "email")),
    ("phone", _length(Contact, "phone")),
    ("consent_source", _length(Contact, "sms_consent_source")),
)
_INVOICE_TEXT = (
    ("number", _length(Invoice, "number")),
    ("external_id", _length(Invoice, "external_id")),
    ("currency", _length(Invoice, "currency")),
    ("payment_link", _length(Invoice, "payment_link")),
)
_PAYMENT_TEXT = (
    ("external_id", _length(Payment, "external_id")),
    ("customer_external_id", _length(Customer, "external_id")),
    ("currency", _length(Payment, "currency")),
    ("reference", _length(Payment, "reference")),
)

_CUSTOMER_TAKEN_OUT = "is not stored, as its customer is not (see that customer's problem)"


def screen(batch: LedgerBatch) -> None:
    """Take out of `batch` every record it must not store, each as a problem in batch.problems."""
    taken_out: set[str] = set()
    if _all_fine(batch.customers.values(), _CUSTOMER_TEXT, lists=("tags",)) and _all_fine(
        [c for customer in batch.customers.values() for c in customer.contacts], _CONTACT_TEXT
    ):
        batch.invoices = _invoices_kept(batch, taken_out)
        batch.payments = _payments_kept(batch, taken_out)
        return
    for customer_id, customer in list(batch.customers.items()):
        problem = _customer_problem(customer)
        if problem:
            del batch.customers[customer_id]
            taken_out.add(customer_id)
            batch.problems.append(
                SourceProblem(
                    "customer",
                    visible(customer_id),
                    f"customer {visible(customer.name)} ({visible(customer_id)}), {problem}",
                )
            )
            continue
        customer.contacts = [c for c in customer.contacts if _contact_kept(batch, customer, c)]
    batch.invoices = _invoices_kept(batch, taken_out)
    batch.payments = _payments_kept(batch, taken_out)


def _customer_problem(customer: CustomerRecord) -> str | None:
    texts = [(field, getattr(customer, field), limit) for field, limit in _CUSTOMER_TEXT]
    texts.extend(("tags", tag, None) for tag in customer.tags or [])
    return _first_problem(texts)


def _contact_kept(batch: LedgerBatch, customer: CustomerRecord, contact: ContactRecord) -> bool:
    problem = _first_problem([(f, getattr(contact, f), limit) for f, limit in _CONTACT_TEXT])
    if problem is None:
        return True
    who = visible(contact.email or contact.phone or contact.name or "")
    batch.problems.append(
        SourceProblem(
            "customer",
            visible(customer.external_id),
            f"customer {visible(customer.name)}, contact {who}, {problem}; the customer is "
            "kept without this contact",
        )
    )
    return False


def _invoices_kept(batch: LedgerBatch, taken_out: set[str]) -> list[InvoiceRecord]:
    if _invoices_all_fine(batch.invoices, taken_out):
        return list(batch.invoices)
    kept: list[InvoiceRecord] = []
    first_of: dict[tuple[str, str], InvoiceRecord] = {}
    for invoice in batch.invoices:
        key = (invoice.customer_external_id, invoice.number)
        problem = _first_problem(
            [(f, getattr(invoice, f), limit) for f, limit in _INVOICE_TEXT]
        ) or _first_date_problem(
            (("issue_date", invoice.issue_date), ("due_date", invoice.due_date))
        )
        if problem is None and invoice.customer_external_id in taken_out:
            problem = _CUSTOMER_TAKEN_OUT
        if problem is None and key in first_of and _void_gives_way(batch, first_of[key], invoice):
            kept[kept.index(first_of[key])] = first_of[key] = invoice
            continue
        if problem is None and key in first_of and _void_gives_way(batch, invoice, first_of[key]):
            continue
        if problem is None and key in first_of:
            problem = (
                f"is in {batch.label} twice (ids {visible(first_of[key].external_id or '?')} "
                f"and {visible(invoice.external_id or '?')}); the first is kept"
            )
        if problem:
            batch.problems.append(
                SourceProblem(
                    "invoice",
                    visible(invoice.external_id or invoice.number),
                    f"invoice {visible(invoice.number)} of customer "
                    f"{visible(invoice.customer_external_id)}, {problem}",
                )
            )
            continue
        first_of[key] = invoice
        kept.append(invoice)
    return kept


def _void_gives_way(batch: LedgerBatch, void: InvoiceRecord, live: InvoiceRecord) -> bool:
    """Whether `void` leaves the batch to `live`, of the same customer and number: a void invoice
    never keeps its number from a live one the source gave it again. It is taken as gone from the
    source (voided if stored open, its number given up to the live one)."""
    if void.status != "void" or live.status == "void":
        return False
    if void.external_id is not None:
        batch.deleted_invoices.append(void.external_id)
    return True


def _payments_kept(batch: LedgerBatch, taken_out: set[str]) -> list[PaymentRecord]:
    kept: list[PaymentRecord] = []
    seen: set[str] = set()
    for payment in batch.payments:
        problem = _first_problem(
            [(f, getattr(payment, f), limit) for f, limit in _PAYMENT_TEXT]
        ) or _first_date_problem((("received_on", payment.received_on),))
        if problem is None and payment.customer_external_id in taken_out:
            problem = _CUSTOMER_TAKEN_OUT
        if problem is None and payment.external_id in seen:
            problem = f"is in {batch.label} twice; the first is kept"
        if problem:
            batch.problems.append(
                SourceProblem(
                    "payment",
                    visible(payment.external_id),
                    f"payment {visible(payment.external_id)}, {problem}",
                )
            )
            continue
        seen.add(payment.external_id)
        kept.append(payment)
    return kept


def _all_fine(
    records: Iterable[Any], fields: Sequence[tuple[str, int | None]], lists: Sequence[str] = ()
) -> bool:
    """Whether no record has a problem in any of its text `fields` (nor in the texts of its
    `lists`): the usual case, decided a field at a time over all the records at once; when it is
    not, each record is looked at on its own to name the problem."""
    records = list(records)
    for name, limit in fields:
        if not _texts_fine(list(filter(None, map(attrgetter(name), records))), limit):
            return False
    for name in lists:
        texts = [text for values in map(attrgetter(name), records) if values for text in values]
        if not _texts_fine(texts, None):
            return False
    return True


def _texts_fine(texts: list[str], limit: int | None) -> bool:
    if not "".join(texts).isprintable():
        return False
    return limit is None or not texts or max(map(len, texts)) <= limit


def _invoices_all_fine(invoices: list[InvoiceRecord], taken_out: set[str]) -> bool:
    """Whether every invoice is kept: no text or date problem, none of a customer taken out and
    none twice in the batch (the usual case, decided without a look at each invoice)."""
    if not _all_fine(invoices, _INVOICE_TEXT):
        return False
    customers = list(map(attrgetter("customer_external_id"), invoices))
    if taken_out and not taken_out.isdisjoint(customers):
        return False
    days = {*map(attrgetter("issue_date"), invoices), *map(attrgetter("due_date"), invoices)}
    if any(date_problem(day) for day in days):
        return False
    return len(set(zip(customers, map(attrgetter("number"), invoices), strict=True))) == len(
        invoices
    )


def _first_problem(texts: list[tuple[str, str | None, int | None]]) -> str | None:
    """The first of (field, its text, the most characters it may have) that is wrong, as
    `field: what is wrong`."""
    if "".join(text for _, text, _ in texts if text).isprintable() and all(
        limit is None or text is None or len(text) <= limit for _, text, limit in texts
    ):
        return None  # the usual case, decided without a look at each field
    for field, text, limit in texts:
        if text is None:
            continue
        problem = text_problem(text)
        if problem is None and limit is not None and len(text) > limit:
            problem = f"is {len(text)} characters long; at most {limit} fit"
        if problem:
            return f"{field}: {problem}"
    return None


def _first_date_problem(dates: Iterable[tuple[str, date]]) -> str | None:
    for field, day in dates:
        problem = date_problem(day)
        if problem:
            return f"{field}: {problem}"
    return None
