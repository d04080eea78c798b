"""Reading records from an accounting API (QuickBooks Online, Xero) into a LedgerBatch: the field
checks both sources make the same way, the sync cursor's format, and the customers and contacts
they add.

A field that cannot be used raises UnreadableField; the source turns it into a SourceProblem that
names the record, and the rest of the batch still syncs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.core.errors import UserError
from bot.core.language import parse_language
from bot.core.money import is_currency, minor_units, parse_amount
from integrations.base.ledger import (
    ContactRecord,
    CustomerRecord,
    LedgerBatch,
    SourceProblem,
    date_problem,
    text_problem,
    visible,
)
from integrations.csv_common import normalise_email

# The next cursor is the server's clock less this: a change made while a sync ran is fetched again
# next time (the upsert is idempotent) rather than missed.
CURSOR_OVERLAP = timedelta(minutes=5)


class UnreadableField(Exception):
    """One field of one record is unusable; becomes a SourceProblem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")


# --- Fields ------------------------------------------------------------------------------------


def amount(raw: dict[str, Any], field: str, currency: str) -> Decimal:
    """The record's `field` as money in `currency` (see `money`); a missing one is unreadable."""
    if raw.get(field) is None:
        raise UnreadableField(field, "is missing")
    return money(raw[field], field, currency)


def money(value: object, field: str, currency: str) -> Decimal:
    """An amount as the API sent it (a number or a decimal string), never negative and with no
    more decimal places than the currency uses, quantized to them."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise UnreadableField(field, f"{value!r} is not an amount")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    try:
        parsed = parse_amount(text)
    except ValueError as exc:
        raise UnreadableField(field, str(exc)) from None
    if parsed < 0:
        raise UnreadableField(field, f"{parsed} is negative")
    quantum = Decimal(1).scaleb(-minor_units(currency))
    if parsed != parsed.quantize(quantum):
        raise UnreadableField(field, f"{parsed} has more decimal places than {currency} uses")
    return parsed.quantize(quantum)


def ledger_date(day: date, field: str) -> date:
    """`day`, when it is within the years a ledger date may be (integrations.base.ledger)."""
    problem = date_problem(day)
    if problem:
        raise UnreadableField(field, problem)
    return day


def plain_text(text: str, field: str) -> str:
    """`text`, when it holds no control character or bidirectional override."""
    problem = text_problem(text)
    if problem:
        raise UnreadableField(field, problem)
    return text


def currency_code(code: str, field: str) -> str:
    """`code` upper-cased, when it is an ISO 4217 currency."""
    code = code.upper()
    if not is_currency(code):
        raise UnreadableField(field, f"{code!r} is not an ISO 4217 currency code")
    return code


# --- The sync cursor ---------------------------------------------------------------------------


def parse_cursor(cursor: str | None, label: str) -> datetime | None:
    """The stored cursor of the source `label` names, as an aware UTC time (None: sync all)."""
    if cursor is None:
        return None
    try:
        since = datetime.fromisoformat(cursor)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise UserError(
            f"the {label} sync cursor {cursor!r} is not a timestamp with a timezone: "
            "clear it to sync everything again"
        )
    return since.astimezone(UTC)


def format_time(instant: datetime) -> str:
    """A time as the cursor stores it: UTC ISO 8601, whole seconds."""
    return instant.astimezone(UTC).replace(microsecond=0).isoformat()


def next_cursor(
    cursor: str | None, server_time: datetime | None, updated: Iterable[datetime | None]
) -> str | None:
    """The server's clock at the first answer less CURSOR_OVERLAP; without it, the latest time a
    record was updated; without any, the cursor as it was."""
    if server_time is not None:
        return format_time(server_time - CURSOR_OVERLAP)
    seen = [t for t in updated if t is not None]
    return format_time(max(seen)) if seen else cursor


# --- Customers and contacts --------------------------------------------------------------------


def new_customer(
    batch: LedgerBatch, noun: str, customer_id: str, name: str, fields: tuple[str, str]
) -> CustomerRecord | None:
    """A customer with this id and name; None when either is empty or holds a control character:
    then the batch gets a problem naming the `noun` ("customer", "contact") and which of `fields`
    (id field, name field) is wrong."""
    for field, text in zip(fields, (customer_id, name), strict=True):
        wrong = text_problem(text) if text else "is missing"
        if wrong:
            batch.problems.append(
                SourceProblem(
                    "customer",
                    visible(customer_id) or None,
                    f"{noun} {visible(name or customer_id)}: {field} {wrong}",
                )
            )
            return None
    return CustomerRecord(external_id=customer_id, name=name)


def source_language(batch: LedgerBatch, customer_id: str, who: str, text: str) -> str | None:
    """The language tag a source gives (`es`, `fr-CA`), normalised; None when it gives none, or
    one arbot does not know (the batch then gets a problem naming it, and the customer syncs
    without it)."""
    if not text:
        return None
    try:
        return parse_language(text)
    except ValueError as exc:
        batch.problems.append(
            SourceProblem("customer", visible(customer_id) or None, f"{who}: language {exc}")
        )
        return None


def add_contact(customer: CustomerRecord, contact: ContactRecord) -> None:
    """Add the contact unless the customer already has one with its email address."""
    if contact.email and any(
        c.email and c.email.lower() == contact.email.lower() for c in customer.contacts
    ):
        return
    customer.contacts.append(contact)


def add_missing_customers(
    batch: LedgerBatch,
    named: Mapping[str, str],
    look_up: Callable[[list[str]], None],
) -> None:
    """Make sure every customer the invoices name (`named`: id -> the name the invoice gives) is
    in the batch: `look_up` fetches and adds those that did not come with the customers (an
    incremental sync, or an inactive customer); any still missing are named from the invoice."""
    missing = sorted(i for i in named if i and i not in batch.customers)
    if not missing:
        return
    # One already reported as unreadable is not asked for again (nor reported twice).
    unreadable = {p.external_id for p in batch.problems if p.kind == "customer"}
    look_up([i for i in missing if visible(i) not in unreadable])
    for customer_id in missing:
        if customer_id not in batch.customers:
            batch.customers[customer_id] = CustomerRecord(
                external_id=customer_id, name=named[customer_id]
            )


def checked_email(
    batch: LedgerBatch, customer_id: str, who: str, field: str, text: str
) -> str | None:
    """`text` as a normalised email address; None when there is none, or when it is not one:
    then the batch gets a problem naming `who` ("customer Acme") and the field."""
    if not text:
        return None
    try:
        return normalise_email(text)
    except ValueError as exc:
        batch.problems.append(SourceProblem("customer", customer_id, f"{who}: {field} {exc}"))
        return None
