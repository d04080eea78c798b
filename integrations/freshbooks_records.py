"""FreshBooks' clients, invoices and payments (its JSON) read into our records.

FreshBooks writes every `updated` time as a plain `YYYY-MM-DD HH:MM:SS` in US/Eastern, whatever
the business's own zone; they are read as such and kept in UTC.

A deleted invoice is read as status "void" with nothing owed: deleting is FreshBooks' only way to
void an invoice. Invoices carry no payment link: FreshBooks makes a share link on request only,
one invoice at a time.

Every record is checked; one that cannot be read becomes a SourceProblem naming it and its field,
and the rest of the batch still syncs.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from integrations.base.ledger import (
    ContactRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
    date_problem,
    visible,
)
from integrations.csv_common import normalise_phone
from integrations.source_records import (
    UnreadableField,
    checked_email,
    currency_code,
    ledger_date,
    money,
    new_customer,
    plain_text,
    source_language,
)

DELETED = 1  # the vis_state of a deleted record
DRAFT_STATUS = 1  # the old numeric invoice status of a draft
EASTERN = ZoneInfo("America/New_York")  # FreshBooks' "US/Eastern"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- Clients -----------------------------------------------------------------------------------


def add_customer(batch: LedgerBatch, raw: dict[str, Any], phone_region: str) -> None:
    client_id = field_id(raw, "id")
    person = _person(raw)
    name = field_text(raw, "organization") or person
    record = new_customer(batch, "client", client_id, name, ("id", "organization"))
    if record is None:
        return
    who = f"client {name}"
    email = checked_email(batch, client_id, who, "email", field_text(raw, "email"))
    phone = _phone(batch, client_id, who, raw, phone_region)
    # the client's language (RFC 5646, e.g. "es"), which FreshBooks writes its invoices in
    record.language = source_language(batch, client_id, who, field_text(raw, "language"))
    if email or phone:
        record.contacts.append(
            ContactRecord(person or None, email, phone, None, None, record.language)
        )
    batch.customers[client_id] = record


def _phone(
    batch: LedgerBatch, client_id: str, who: str, raw: dict[str, Any], phone_region: str
) -> str | None:
    for field in ("mob_phone", "bus_phone"):
        number = field_text(raw, field)
        if not number:
            continue
        try:
            return normalise_phone(number, phone_region)
        except ValueError as exc:
            batch.problems.append(SourceProblem("customer", client_id, f"{who}: {field} {exc}"))
    return None


# --- Invoices and payments ---------------------------------------------------------------------


def add_invoice(batch: LedgerBatch, raw: dict[str, Any]) -> None:
    number = invoice_number(raw)
    try:
        batch.invoices.append(_invoice(raw, number))
    except UnreadableField as exc:
        invoice_id = field_id(raw, "id")
        batch.problems.append(
            SourceProblem(
                "invoice",
                invoice_id or None,
                f"invoice {visible(number)} (FreshBooks id {visible(invoice_id) or '?'}): {exc}",
            )
        )


def add_payment(batch: LedgerBatch, raw: dict[str, Any], numbers: dict[str, str]) -> None:
    """`numbers` maps FreshBooks invoice ids to invoice numbers."""
    payment_id = field_id(raw, "id")
    try:
        batch.payments.append(_payment(raw, numbers))
    except UnreadableField as exc:
        batch.problems.append(
            SourceProblem("payment", payment_id or None, f"payment {payment_id or '?'}: {exc}")
        )


def _invoice(raw: dict[str, Any], number: str) -> InvoiceRecord:
    invoice_id = _required(raw, "id")
    plain_text(number, "invoice_number")
    client_id = _required(raw, "customerid")
    deleted = raw.get("vis_state") == DELETED
    issued = _date(raw, "create_date")
    due = _due_date(raw, issued)
    if due < issued:
        raise UnreadableField("due_date", f"{due} is before the invoice date {issued}")
    currency = _currency(raw)
    total = _money(raw, "amount", currency)
    balance = Decimal(0).quantize(total) if deleted else _money(raw, "outstanding", currency)
    if balance > total:
        raise UnreadableField("outstanding", f"{balance} is more than the total {total}")
    return InvoiceRecord(
        customer_external_id=client_id,
        number=number,
        issue_date=issued,
        due_date=due,
        currency=currency,
        total=total,
        balance=balance,
        status="void" if deleted else None,
        external_id=invoice_id,
    )


def _payment(raw: dict[str, Any], numbers: dict[str, str]) -> PaymentRecord:
    payment_id = _required(raw, "id")
    amount_field = raw.get("amount")
    code = field_text(amount_field, "code") if isinstance(amount_field, dict) else ""
    if not code:
        raise UnreadableField("amount.code", "is missing")
    currency = currency_code(code, "amount.code")
    paid = _money(raw, "amount", currency)
    invoice_id = field_id(raw, "invoiceid")
    if invoice_id and invoice_id not in numbers:
        raise UnreadableField(
            "invoiceid", f"applies it to invoice id {invoice_id}, which FreshBooks did not return"
        )
    return PaymentRecord(
        external_id=payment_id,
        customer_external_id=field_id(raw, "clientid") or None,
        received_on=_date(raw, "date"),
        amount=paid,
        currency=currency,
        reference=field_text(raw, "transactionid") or None,
        allocations=((numbers[invoice_id], paid),) if invoice_id and paid else (),
    )


# --- Reading fields ----------------------------------------------------------------------------


def parse_freshbooks_time(text: str) -> datetime:
    """An `updated` time (`YYYY-MM-DD HH:MM:SS`, US/Eastern by FreshBooks' rule) in UTC."""
    naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    return naive.replace(tzinfo=EASTERN).astimezone(UTC)


def field_text(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    return str(value).strip() if value is not None else ""


def field_id(raw: dict[str, Any], field: str) -> str:
    """An id field; FreshBooks writes 0 for "none"."""
    value = field_text(raw, field)
    return "" if value == "0" else value


def _required(raw: dict[str, Any], field: str) -> str:
    value = field_id(raw, field)
    if not value:
        raise UnreadableField(field, "is missing")
    return value


def invoice_number(raw: dict[str, Any]) -> str:
    return field_text(raw, "invoice_number") or field_id(raw, "id") or "?"


def _person(raw: dict[str, Any]) -> str:
    return " ".join(p for p in (field_text(raw, "fname"), field_text(raw, "lname")) if p)


def client_name(raw_invoice: dict[str, Any]) -> str:
    """The client's name as an invoice gives it, for a client FreshBooks did not return."""
    return (
        field_text(raw_invoice, "current_organization")
        or field_text(raw_invoice, "organization")
        or _person(raw_invoice)
        or f"FreshBooks client {field_id(raw_invoice, 'customerid')}"
    )


def client_label(raw_client: dict[str, Any]) -> str:
    return (
        field_text(raw_client, "organization") or _person(raw_client) or field_id(raw_client, "id")
    )


def is_draft(raw: dict[str, Any]) -> bool:
    status = field_text(raw, "v3_status").lower()
    return status == "draft" if status else raw.get("status") == DRAFT_STATUS


def _date(raw: dict[str, Any], field: str) -> date:
    text = field_text(raw, field)
    if not text:
        raise UnreadableField(field, "is missing; set it on the record in FreshBooks")
    try:
        day = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise UnreadableField(field, f"{text!r} is not a date (YYYY-MM-DD)")
    return ledger_date(day, field)


def _due_date(raw: dict[str, Any], issued: date) -> date:
    """`due_date`; an invoice without one is due `due_offset_days` after it was issued."""
    if field_text(raw, "due_date"):
        return _date(raw, "due_date")
    offset = raw.get("due_offset_days")
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        try:
            due = issued + timedelta(days=offset)
        except OverflowError:
            raise UnreadableField(
                "due_offset_days", f"{offset}: the due date is past the end of the calendar"
            ) from None
        problem = date_problem(due)
        if problem:
            raise UnreadableField("due_offset_days", f"{offset}: the due date {problem}")
        return due
    raise UnreadableField("due_date", "is missing; set the invoice's due date in FreshBooks")


def _currency(raw: dict[str, Any]) -> str:
    amount_field = raw.get("amount")
    code = field_text(raw, "currency_code") or (
        field_text(amount_field, "code") if isinstance(amount_field, dict) else ""
    )
    if not code:
        raise UnreadableField("currency_code", "is missing")
    return currency_code(code, "currency_code")


def _money(raw: dict[str, Any], field: str, currency: str) -> Decimal:
    """A money object (`{"amount": "12.00", "code": "USD"}`) in `currency`."""
    value = raw.get(field)
    if not isinstance(value, dict) or value.get("amount") in (None, ""):
        raise UnreadableField(f"{field}.amount", "is missing")
    code = (field_text(value, "code") or currency).upper()
    if code != currency:
        raise UnreadableField(f"{field}.code", f"{code!r} is not the record's currency {currency}")
    return money(value["amount"], f"{field}.amount", currency)


def updated_at(raw: dict[str, Any]) -> datetime | None:
    """When FreshBooks last changed the record, in UTC; None when it does not say, or unreadably."""
    text = field_text(raw, "updated")
    try:
        return parse_freshbooks_time(text) if text else None
    except ValueError:
        return None
