"""The ledger CSV (DESIGN's format): read, validate every row, and hand back a LedgerBatch.

A file with any bad row yields nothing but the full list of problems, each as
`row N, column: what is wrong`. Rows are numbered as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.clock import zone_named
from bot.core.errors import UserError, ValidationFailed
from bot.core.language import parse_language
from bot.core.money import minor_units, parse_amount
from bot.core.vocabulary import TIERS
from integrations.base.ledger import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ContactRecord,
    CustomerRecord,
    InvoiceRecord,
    LedgerBatch,
    visible,
)
from integrations.csv_common import (
    Column,
    RowChecker,
    RowValues,
    at_most,
    currency_code,
    cycles_collected_after,
    excess_places,
    iso_date,
    normalise_email,
    normalise_phone,
    read_cells,
)

SOURCE = "csv"  # the source of the customers and invoices a ledger CSV brings

# Customer-level columns must agree on every row of the same customer.
CUSTOMER_COLUMNS = ("customer_name", "tier", "owner_slack_id", "timezone", "never_automate", "tags")

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
# What the customer's owner_slack_id and timezone columns hold (bot/core/models.py); the other
# text cells are held to theirs by their Column's check (at_most, or a format shorter than it)
_owner_slack_id_fits = at_most(32)
_timezone_fits = at_most(64)
# An amount no check can refuse: at most 14 digits and 4 places, not negative.
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,4})?")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _amount(text: str) -> Decimal:
    if _PLAIN_AMOUNT.fullmatch(text):
        return Decimal(text)  # what parse_amount gives it, without its other checks
    amount = parse_amount(text)
    if amount < 0:
        raise ValueError(f"{amount} is negative; credit notes are not invoices")
    return amount


def _tier(text: str) -> str:
    tier = text.lower()
    if tier not in TIERS:
        raise ValueError(f"{text!r} is not a tier; use one of {', '.join(TIERS)}")
    return tier


def _slack_user(text: str) -> str:
    if not _SLACK_USER.fullmatch(text):
        raise ValueError(f"{text!r} is not a Slack user id (like U024BE7LH)")
    return _owner_slack_id_fits(text)


def _timezone(text: str) -> str:
    _timezone_fits(text)
    try:
        zone_named(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not an IANA timezone (e.g. America/Chicago)") from None
    return text


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes/no (use true or false)")


def _tags(text: str) -> list[str]:
    return sorted({tag.strip().lower() for tag in text.split(";") if tag.strip()})


def _as_given(text: str) -> str:
    return text


def pdf_url(text: str) -> str:
    """Where the invoice's PDF copy is: an http(s) address with a host, one line."""
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{visible(text)!r} is not an http(s) address of the invoice's PDF")
    if len(text) > 2048 or not text.isprintable() or " " in text:
        raise ValueError("is not one address of at most 2,048 characters without spaces")
    return text


# The columns a row is read by, in the order its problems are listed (the phone is checked after
# the row: it needs the region).
COLUMNS = (
    Column("customer_id", at_most(128)),
    Column("customer_name", at_most(256)),
    Column("invoice_number", at_most(64), repeats=False),
    Column("issue_date", iso_date),
    Column("due_date", iso_date),
    Column("currency", currency_code),
    Column("amount", _amount, repeats=False),
    Column("balance", _amount, repeats=False, like="amount"),
    Column("pdf_url", pdf_url, required=False, repeats=False),
    Column("paid_date", iso_date, required=False),
    Column("contact_name", at_most(256), required=False),
    Column("email", normalise_email, required=False),
    Column("phone", _as_given, required=False),
    Column("tier", _tier, required=False),
    Column("owner_slack_id", _slack_user, required=False),
    Column("timezone", _timezone, required=False),
    Column("sms_consent", _boolean, required=False),
    Column("never_automate", _boolean, required=False),
    Column("tags", _tags, required=False),
    Column("language", parse_language, required=False),
)


# The cells of a row's own invoice, in the order the checker gives their values.
_INVOICE_CELLS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "amount",
    "balance",
    "pdf_url",
    "paid_date",
)

# Cells that repeat on each row of a customer: read together, once per customer.
_CUSTOMER_CELLS = ("customer_id", "customer_name", *OPTIONAL_COLUMNS)


class LedgerRow(NamedTuple):
    """One row's values, each read by its column of COLUMNS: the customer's, then the invoice's."""

    customer_id: str
    customer_name: str
    contact_name: str | None
    email: str | None
    phone: str | None
    tier: str | None
    owner_slack_id: str | None
    timezone: str | None
    sms_consent: bool | None
    never_automate: bool | None
    tags: list[str] | None
    language: str | None
    invoice_number: str
    issue_date: date
    due_date: date
    currency: str
    amount: Decimal
    balance: Decimal
    pdf_url: str | None
    paid_date: date | None


class PaidDays:
    """A row's paid_date: checked against its invoice and today, and made the instant stored as
    its paid_at, the start of that day in the business's timezone (what the forecast's history
    reads back, in the same timezone, as that day)."""

    def __init__(self, today: date | None, timezone: str) -> None:
        self.today = today  # None: no clock to check against (nothing imported from it)
        self.zone = ZoneInfo(timezone)
        self._instants: dict[date, datetime] = {}

    def fits(self, paid: date, issue_date: date, balance: Decimal) -> bool:
        return not balance and issue_date <= paid and (self.today is None or paid <= self.today)

    def problems(self, row_number: int, row: LedgerRow) -> list[str]:
        paid = row.paid_date
        if paid is None or self.fits(paid, row.issue_date, row.balance):
            return []
        where = f"row {row_number}, paid_date:"
        if row.balance:
            return [
                f"{where} {paid} is given but the balance is {row.balance}; only a paid "
                "invoice (balance 0) has a paid date"
            ]
        if paid < row.issue_date:
            return [f"{where} {paid} is before the issue date {row.issue_date}"]
        return [f"{where} {paid} is after today ({self.today})"]

    def instant(self, paid: date | None) -> datetime | None:
        if paid is None:
            return None
        found = self._instants.get(paid)
        if found is None:
            local = datetime.combine(paid, time(0), tzinfo=self.zone)
            found = self._instants[paid] = local.astimezone(UTC)
        return found


class CsvLedgerSource:
    """The ledger CSV as a LedgerSource."""

    def __init__(
        self,
        path: Path,
        phone_region: str = "US",
        on_row: Callable[[], None] | None = None,
        today: date | None = None,
        timezone: str = "UTC",
    ):
        self.path = path
        self.phone_region = phone_region
        self.on_row = on_row
        self.today = today
        self.timezone = timezone

    def fetch(self) -> LedgerBatch:
        return read_ledger_csv(
            self.path, self.phone_region, self.on_row, today=self.today, timezone=self.timezone
        )


def count_rows(path: Path) -> int:
    """A quick count of data rows (lines less the header), for the progress bar."""
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def read_ledger_csv(
    path: Path,
    phone_region: str = "US",
    on_row: Callable[[], None] | None = None,
    today: date | None = None,
    timezone: str = "UTC",
) -> LedgerBatch:
    """Validate the whole file; raise ValidationFailed listing every problem, or return the batch.
    A paid_date may not be after `today` (the business's date; an import passes its clock's) and
    is stored from the start of that day in `timezone` (the business's)."""
    paid_days = PaidDays(today, timezone)
    with cycles_collected_after():
        return _read(path, phone_region, on_row, paid_days)


def _read(
    path: Path,
    phone_region: str,
    on_row: Callable[[], None] | None,
    paid_days: PaidDays,
) -> LedgerBatch:
    problems: list[str] = []
    batch = LedgerBatch(source=SOURCE, label=path.name)
    first_row_of: dict[str, tuple[int, dict[str, Any]]] = {}  # customer id -> (row, its fields)
    invoice_rows: dict[tuple[str, str], int] = {}
    # per customer: contact key -> (first row, the merged contact)
    contacts_of: dict[str, dict[str, tuple[int, ContactRecord]]] = {}

    checker = RowChecker(COLUMNS, together=_CUSTOMER_CELLS)
    assert checker.order == LedgerRow._fields
    assert LedgerRow._fields[-8:] == _INVOICE_CELLS
    # the checker's reader of the rows by their position in the header
    readers: list[Callable[[int, list[Any], list[str]], RowValues | None]] = []
    # A row whose customer cells are those of a row already taken (the same list, from the
    # checker) adds nothing to its customer or contacts: only its invoice is new.
    taken: set[int] = set()
    for row_number, cells in read_cells(
        path,
        REQUIRED_COLUMNS,
        problems,
        on_header=lambda header: readers.append(checker.by_position(header)),
    ):
        if on_row is not None:
            on_row()
        values = readers[0](row_number, cells, problems)
        if values is None:
            continue
        together, apart = values
        if id(together) in taken:
            # The usual row: its customer's cells passed on an earlier row, and its invoice's
            # passes every check of _check_row (which then has nothing to say).
            number, issue_date, due_date, currency, amount, balance, document_url, paid = apart
            places, unit = _minor_unit(currency)
            if (
                issue_date <= due_date
                and balance <= amount
                # written to the currency's places exactly (the usual), or to fewer
                and (amount.same_quantum(unit) or -amount.as_tuple().exponent <= places)
                and (
                    balance is amount  # written alike: read once (its column is `like` amount)
                    or balance.same_quantum(unit)
                    or -balance.as_tuple().exponent <= places
                )
                and (paid is None or paid_days.fits(paid, issue_date, balance))
            ):
                key = (together[0], number)
                if key not in invoice_rows:
                    invoice_rows[key] = row_number
                    # by position, every field of InvoiceRecord in its order (half the cost of
                    # naming them, on each of a book's rows)
                    batch.invoices.append(
                        InvoiceRecord(
                            key[0],  # customer_external_id
                            number,
                            issue_date,
                            due_date,
                            currency,
                            amount,  # total
                            balance,
                            None,  # status
                            None,  # payment_link
                            None,  # external_id
                            document_url,
                            paid_days.instant(paid),  # paid_at
                        )
                    )
                    continue
        row = LedgerRow(*together, *apart)
        row_problems = _check_row(row_number, row, phone_region, paid_days)
        if row_problems:
            problems.extend(row_problems)
            continue

        key = (row.customer_id, row.invoice_number)
        if key in invoice_rows:
            problems.append(
                f"row {row_number}, invoice_number: invoice {row.invoice_number} of customer "
                f"{row.customer_id} is already on row {invoice_rows[key]}"
            )
            continue
        invoice_rows[key] = row_number
        if id(together) in taken:
            batch.invoices.append(_invoice(row, paid_days))
            continue

        fields = {column: getattr(row, column) for column in CUSTOMER_COLUMNS}
        if row.customer_id in first_row_of:
            first_row, first_fields = first_row_of[row.customer_id]
            conflicts = _customer_conflicts(
                row_number, row.customer_id, first_row, first_fields, fields
            )
            if conflicts:
                problems.extend(conflicts)
                continue
            for column, value in fields.items():
                if first_fields[column] is None and value is not None:
                    first_fields[column] = value
        else:
            first_row_of[row.customer_id] = (row_number, fields)

        customer = batch.customers.get(row.customer_id)
        if customer is None:
            customer = CustomerRecord(external_id=row.customer_id, name=row.customer_name)
            batch.customers[row.customer_id] = customer
        if customer.language is None:  # the first language given on its rows
            customer.language = row.language
        contact = _contact(row, row_number, path.name, phone_region)
        if contact is not None:
            known = contacts_of.setdefault(row.customer_id, {})
            clash = _merge_contact(known, contact, row_number)
            if clash:
                problems.append(clash)
                continue

        batch.invoices.append(_invoice(row, paid_days))
        taken.add(id(together))

    if problems:
        raise ValidationFailed(str(path), problems)
    if not batch.invoices:
        raise UserError(f"{path}: no invoices found (the file has a header but no rows)")
    for customer_id, known in contacts_of.items():
        batch.customers[customer_id].contacts = [contact for _row, contact in known.values()]
    for customer_id, (_row, fields) in first_row_of.items():
        customer = batch.customers[customer_id]
        customer.tier = fields["tier"]
        customer.owner_slack_id = fields["owner_slack_id"]
        customer.timezone = fields["timezone"]
        customer.never_automate = fields["never_automate"]
        customer.tags = None if fields["tags"] is None else list(fields["tags"])
    return batch


def _invoice(row: LedgerRow, paid_days: PaidDays) -> InvoiceRecord:
    return InvoiceRecord(
        customer_external_id=row.customer_id,
        number=row.invoice_number,
        issue_date=row.issue_date,
        due_date=row.due_date,
        currency=row.currency,
        total=row.amount,
        balance=row.balance,
        document_url=row.pdf_url,
        paid_at=paid_days.instant(row.paid_date),
    )


@cache
def _minor_unit(currency: str) -> tuple[int, Decimal]:
    """The currency's decimal places, and its minor unit as a Decimal (0.01 for USD)."""
    places = minor_units(currency)
    return places, Decimal(1).scaleb(-places)


def _check_row(
    row_number: int, row: LedgerRow, phone_region: str, paid_days: PaidDays
) -> list[str]:
    problems = []
    if row.due_date < row.issue_date:
        problems.append(
            f"row {row_number}, due_date: {row.due_date} is before the issue date {row.issue_date}"
        )
    for column in ("amount", "balance"):
        excess = excess_places(row_number, column, getattr(row, column), row.currency)
        if excess:
            problems.append(excess)
    if row.balance > row.amount:
        problems.append(
            f"row {row_number}, balance: {row.balance} is more than the amount {row.amount}"
        )
    problems.extend(paid_days.problems(row_number, row))
    if row.phone:
        try:
            normalise_phone(row.phone, phone_region)
        except ValueError as exc:
            problems.append(f"row {row_number}, phone: {exc}")
    if row.sms_consent and not row.phone:
        problems.append(f"row {row_number}, sms_consent: is yes but the row has no phone number")
    return problems


def _customer_conflicts(
    row_number: int,
    customer_id: str,
    first_row: int,
    first: dict[str, Any],
    fields: dict[str, Any],
) -> list[str]:
    conflicts = []
    for column, value in fields.items():
        earlier = first[column]
        if value is not None and earlier is not None and value != earlier:
            conflicts.append(
                f"row {row_number}, {column}: {_show(value)} differs from {_show(earlier)} "
                f"given for customer {customer_id} on row {first_row}"
            )
    return conflicts


def _show(value: Any) -> str:
    if isinstance(value, list):
        return repr(";".join(value))
    return repr(value)


def _merge_contact(
    known: dict[str, tuple[int, ContactRecord]], contact: ContactRecord, row_number: int
) -> str | None:
    """One contact per email address (or per phone when there is no email); rows fill each other in."""
    key = contact.email.lower() if contact.email else f"tel:{contact.phone}"
    if key not in known:
        known[key] = (row_number, contact)
        return None
    first_row, earlier = known[key]
    if earlier.phone and contact.phone and earlier.phone != contact.phone:
        return (
            f"row {row_number}, phone: {contact.phone} differs from {earlier.phone} given for "
            f"{contact.email} on row {first_row}; one contact has one phone number"
        )
    if earlier.language and contact.language and earlier.language != contact.language:
        return (
            f"row {row_number}, language: {contact.language} differs from {earlier.language} "
            f"given for {contact.email or contact.phone} on row {first_row}; one contact reads "
            "one language"
        )
    # A yes on any of its rows gives consent, else the first no withdraws it, each with its row
    # as the source; no value on every row leaves the stored consent as it is.
    consent = earlier
    if (contact.sms_consent, earlier.sms_consent) in ((True, False), (True, None), (False, None)):
        consent = contact
    known[key] = (
        first_row,
        ContactRecord(
            name=earlier.name or contact.name,
            email=earlier.email,
            phone=earlier.phone or contact.phone,
            sms_consent=consent.sms_consent,
            consent_source=consent.consent_source,
            language=earlier.language or contact.language,
        ),
    )
    return None


def _contact(
    row: LedgerRow, row_number: int, file_name: str, phone_region: str
) -> ContactRecord | None:
    if not (row.email or row.phone):
        return None
    return ContactRecord(
        name=row.contact_name,
        email=row.email,
        phone=normalise_phone(row.phone, phone_region) if row.phone else None,
        # an empty cell is None (not given: the stored consent stays), "false" withdraws it
        sms_consent=row.sms_consent,
        # the file's name as text the contact's consent_source column can always hold
        consent_source=(
            None if row.sms_consent is None else f"{visible(file_name, 200)} row {row_number}"
        ),
        language=row.language,
    )
