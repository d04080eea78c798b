"""Xero as a ledger source: sales invoices (ACCREC), customer contacts and received payments
through the Accounting API, and reminder notes written to an invoice's history.

Incremental sync sends the cursor as `If-Modified-Since`, which Xero applies to every list here;
lists are read `page=1, 2, ...` until a page holds fewer than 100 records. The next cursor is
Xero's clock at the first answer (`DateTimeUTC`) less a few minutes, so a change made while the sync
ran is fetched again next time (the upsert is idempotent) rather than missed. Draft and submitted
invoices are not owed yet and are left out; voided and deleted ones come back as status "void".
Xero's online-invoice link needs one request per invoice, so invoices carry no payment link.

Every record is checked; one that cannot be read becomes a SourceProblem naming it and its field,
and the rest of the batch still syncs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import phonenumbers

from bot.errors import UserError
from bot.money import is_currency, minor_units, parse_amount
from integrations.base import (
    ContactRecord,
    CustomerRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
)
from integrations.csv_ledger import _email, _phone_in
from integrations.oauth import OAuthClient, SourceError, SourceUnavailable

DEFAULT_API_URL = "https://api.xero.com"
PAGE_SIZE = 100  # what Xero returns per page
ID_CHUNK = 50  # contact ids per `IDs=` lookup
HISTORY_LIMIT = 250  # characters Xero keeps in one history note
CURSOR_OVERLAP = timedelta(minutes=5)
NOT_YET_OWED = ("DRAFT", "SUBMITTED")
VOID = ("VOIDED", "DELETED")

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Unreadable(Exception):
    """One field of one record is unusable; becomes a SourceProblem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")


@dataclass(frozen=True, slots=True)
class XeroTenant:
    tenant_id: str
    name: str
    kind: str  # "ORGANISATION", ...


def xero_tenants(
    access_token: str, api_url: str = DEFAULT_API_URL, http: httpx.Client | None = None
) -> list[XeroTenant]:
    """The organisations the new connection may read (`GET /connections`), to pick the tenant."""
    client = http or httpx.Client(timeout=30)
    try:
        response = client.get(
            f"{api_url.rstrip('/')}/connections",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise SourceUnavailable(
            f"cannot reach Xero ({exc.__class__.__name__}): try again"
        ) from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise SourceError(
            f"Xero refused to list the connected organisations ({response.status_code})"
        )
    return [
        XeroTenant(str(c["tenantId"]), str(c.get("tenantName") or ""), str(c.get("tenantType")))
        for c in response.json()
        if isinstance(c, dict) and c.get("tenantId")
    ]


class XeroSource:
    """An IncrementalSource and InvoiceNotes over one Xero organisation (tenant)."""

    name = "xero"

    def __init__(
        self,
        client: OAuthClient,
        tenant_id: str,
        api_url: str = DEFAULT_API_URL,
        phone_region: str = "US",
    ) -> None:
        self.client = client
        self.tenant_id = tenant_id
        self.base = f"{api_url.rstrip('/')}/api.xro/2.0"
        self.phone_region = phone_region
        self._server_time: datetime | None = None

    # --- IncrementalSource ---------------------------------------------------------------------

    def fetch_since(self, cursor: str | None) -> LedgerBatch:
        since = _parse_cursor(cursor)
        self._server_time = None
        batch = LedgerBatch(source=self.name, label=f"Xero organisation {self.tenant_id}")
        raw_contacts = list(self._pages("Contacts", "IsCustomer==true", since))
        raw_invoices = list(self._pages("Invoices", 'Type=="ACCREC"', since))
        raw_payments = list(self._pages("Payments", 'PaymentType=="ACCRECPAYMENT"', since))

        for raw in raw_contacts:
            self._add_customer(batch, raw)
        owed = [raw for raw in raw_invoices if _text(raw, "Status").upper() not in NOT_YET_OWED]
        self._add_missing_customers(batch, owed)
        for raw in owed:
            self._add_invoice(batch, raw)
        for raw in raw_payments:
            self._add_payment(batch, raw)
        batch.cursor = self._next_cursor(cursor, [*raw_contacts, *raw_invoices, *raw_payments])
        return batch

    # --- InvoiceNotes -------------------------------------------------------------------------

    def add_note(self, invoice_external_id: str, note: str) -> None:
        """A history note on the invoice (Xero keeps 250 characters of each)."""
        details = note if len(note) <= HISTORY_LIMIT else note[: HISTORY_LIMIT - 1] + "…"
        self.client.request(
            "PUT",
            f"{self.base}/Invoices/{invoice_external_id}/History",
            json_body={"HistoryRecords": [{"Details": details}]},
            headers={"xero-tenant-id": self.tenant_id},
        )

    # --- Fetching -----------------------------------------------------------------------------

    def _pages(self, entity: str, where: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        headers = {"xero-tenant-id": self.tenant_id}
        if since is not None:
            headers["If-Modified-Since"] = since.strftime("%Y-%m-%dT%H:%M:%S")
        page = 1
        while True:
            answer = self.client.json(
                "GET",
                f"{self.base}/{entity}",
                params={"where": where, "page": str(page)},
                headers=headers,
            )
            self._note_server_time(answer)
            rows = answer.get(entity) or []
            yield from (row for row in rows if isinstance(row, dict))
            if len(rows) < PAGE_SIZE:
                return
            page += 1

    def _contacts_by_id(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        for offset in range(0, len(ids), ID_CHUNK):
            answer = self.client.json(
                "GET",
                f"{self.base}/Contacts",
                params={
                    "IDs": ",".join(ids[offset : offset + ID_CHUNK]),
                    "includeArchived": "true",
                },
                headers={"xero-tenant-id": self.tenant_id},
            )
            yield from (row for row in answer.get("Contacts") or [] if isinstance(row, dict))

    def _note_server_time(self, answer: dict[str, Any]) -> None:
        if self._server_time is None and answer.get("DateTimeUTC"):
            try:
                self._server_time = parse_xero_date(str(answer["DateTimeUTC"]))
            except ValueError:
                self._server_time = None  # the cursor then falls back to the records' own times

    def _next_cursor(self, cursor: str | None, rows: list[dict[str, Any]]) -> str | None:
        if self._server_time is not None:
            return _format_time(self._server_time - CURSOR_OVERLAP)
        seen = [t for t in (_updated(row) for row in rows) if t is not None]
        return _format_time(max(seen)) if seen else cursor

    # --- Customers ----------------------------------------------------------------------------

    def _add_customer(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        contact_id, name = _text(raw, "ContactID"), _text(raw, "Name")
        if not contact_id or not name:
            field = "ContactID" if not contact_id else "Name"
            batch.problems.append(
                SourceProblem(
                    "customer",
                    contact_id or None,
                    f"contact {name or contact_id}: {field} is missing",
                )
            )
            return
        record = CustomerRecord(external_id=contact_id, name=name)
        person = " ".join(p for p in (_text(raw, "FirstName"), _text(raw, "LastName")) if p)
        email = self._email(batch, contact_id, name, "EmailAddress", _text(raw, "EmailAddress"))
        phone = self._phone(batch, contact_id, name, raw.get("Phones") or [])
        if email or phone:
            record.contacts.append(ContactRecord(person or None, email, phone, False, None))
        for other in raw.get("ContactPersons") or []:
            if not isinstance(other, dict) or other.get("IncludeInEmails") is False:
                continue
            address = self._email(
                batch, contact_id, name, "ContactPersons.EmailAddress", _text(other, "EmailAddress")
            )
            if address and all((c.email or "").lower() != address.lower() for c in record.contacts):
                full = " ".join(
                    p for p in (_text(other, "FirstName"), _text(other, "LastName")) if p
                )
                record.contacts.append(ContactRecord(full or None, address, None, False, None))
        batch.customers[contact_id] = record

    def _email(
        self, batch: LedgerBatch, contact_id: str, name: str, field: str, text: str
    ) -> str | None:
        if not text:
            return None
        try:
            return _email(text)
        except ValueError as exc:
            batch.problems.append(
                SourceProblem("customer", contact_id, f"contact {name}: {field} {exc}")
            )
            return None

    def _phone(
        self, batch: LedgerBatch, contact_id: str, name: str, phones: list[Any]
    ) -> str | None:
        by_type = {_text(p, "PhoneType").upper(): p for p in phones if isinstance(p, dict)}
        for kind in ("MOBILE", "DEFAULT"):
            phone = by_type.get(kind)
            if phone is None or not _text(phone, "PhoneNumber"):
                continue
            try:
                return self._e164(phone)
            except ValueError as exc:
                batch.problems.append(
                    SourceProblem("customer", contact_id, f"contact {name}: {kind} phone {exc}")
                )
        return None

    def _e164(self, phone: dict[str, Any]) -> str:
        """Xero keeps country code, area code and number apart; join them as the country dials."""
        national = _text(phone, "PhoneAreaCode") + _text(phone, "PhoneNumber")
        country = re.sub(r"\D", "", _text(phone, "PhoneCountryCode"))
        region = self.phone_region
        if country:
            region = phonenumbers.region_code_for_country_code(int(country))
            if region == "ZZ":
                raise ValueError(f"country code {country!r} is not a country's")
        return _phone_in(national, region)

    def _add_missing_customers(
        self, batch: LedgerBatch, raw_invoices: list[dict[str, Any]]
    ) -> None:
        """Invoices whose contact did not come with the contacts (an incremental sync, or an
        archived contact): fetch those contacts, or at least name them from the invoice."""
        refs = {
            _text(raw.get("Contact") or {}, "ContactID"): raw.get("Contact") or {}
            for raw in raw_invoices
        }
        missing = sorted(i for i in refs if i and i not in batch.customers)
        if not missing:
            return
        # One already reported as unreadable is not asked for again (nor reported twice).
        unreadable = {p.external_id for p in batch.problems if p.kind == "customer"}
        lookup = [i for i in missing if i not in unreadable]
        for raw in self._contacts_by_id(lookup):
            self._add_customer(batch, raw)
        for contact_id in missing:
            if contact_id not in batch.customers:
                name = _text(refs[contact_id], "Name") or f"Xero contact {contact_id}"
                batch.customers[contact_id] = CustomerRecord(external_id=contact_id, name=name)

    # --- Invoices and payments ------------------------------------------------------------------

    def _add_invoice(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        number = _text(raw, "InvoiceNumber") or _text(raw, "InvoiceID") or "?"
        try:
            record = _invoice(raw, number)
        except _Unreadable as exc:
            batch.problems.append(
                SourceProblem(
                    "invoice", _text(raw, "InvoiceID") or None, f"invoice {number}: {exc}"
                )
            )
            return
        batch.invoices.append(record)

    def _add_payment(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        if _text(raw, "Status").upper() == "DELETED":
            return  # undone in Xero; the invoice's AmountDue, synced with it, says so
        payment_id = _text(raw, "PaymentID")
        try:
            batch.payments.append(_payment(raw))
        except _Unreadable as exc:
            batch.problems.append(
                SourceProblem("payment", payment_id or None, f"payment {payment_id}: {exc}")
            )


def _invoice(raw: dict[str, Any], number: str) -> InvoiceRecord:
    invoice_id = _required(raw, "InvoiceID")
    contact_id = _text(raw.get("Contact") or {}, "ContactID")
    if not contact_id:
        raise _Unreadable("Contact", "is missing")
    status = _text(raw, "Status").upper()
    issued = _date(raw, "Date")
    # A voided invoice stops every follow-up whatever its dates; Xero may have none due.
    due = _date(raw, "DueDate") if status not in VOID or raw.get("DueDate") else issued
    if due < issued:
        raise _Unreadable("DueDate", f"{due} is before the invoice date {issued}")
    currency = _currency(raw.get("CurrencyCode"))
    total = _amount(raw, "Total", currency)
    balance = _amount(raw, "AmountDue", currency)
    if status in VOID or status == "PAID":
        balance = Decimal(0).quantize(total)
    if balance > total:
        raise _Unreadable("AmountDue", f"{balance} is more than the total {total}")
    return InvoiceRecord(
        customer_external_id=contact_id,
        number=number,
        issue_date=issued,
        due_date=due,
        currency=currency,
        total=total,
        balance=balance,
        status="void" if status in VOID else None,
        external_id=invoice_id,
    )


def _payment(raw: dict[str, Any]) -> PaymentRecord:
    payment_id = _required(raw, "PaymentID")
    invoice = raw.get("Invoice") or {}
    number = _text(invoice, "InvoiceNumber")
    if not number:
        raise _Unreadable("Invoice.InvoiceNumber", "is missing")
    currency = _currency(invoice.get("CurrencyCode"))
    amount = _amount(raw, "Amount", currency)
    return PaymentRecord(
        external_id=payment_id,
        customer_external_id=_text(invoice.get("Contact") or {}, "ContactID") or None,
        received_on=_date(raw, "Date"),
        amount=amount,
        currency=currency,
        reference=_text(raw, "Reference") or None,
        allocations=((number, amount),) if amount else (),
    )


# --- Reading fields ----------------------------------------------------------------------------


def parse_xero_date(text: str) -> datetime:
    """`/Date(1243382400000+0000)/` (milliseconds since 1970 UTC, with the zone it was written in,
    or none) or an ISO timestamp, as an aware datetime in that zone."""
    match = _MS_DATE.fullmatch(text.strip())
    if match is None:
        parsed = datetime.fromisoformat(text.strip())
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    instant = _EPOCH + timedelta(milliseconds=int(match.group(1)))
    offset = match.group(2)
    if not offset:
        return instant
    sign = -1 if offset[0] == "-" else 1
    shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return instant.astimezone(timezone(sign * shift))


def _text(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    return str(value).strip() if value is not None else ""


def _required(raw: dict[str, Any], field: str) -> str:
    value = _text(raw, field)
    if not value:
        raise _Unreadable(field, "is missing")
    return value


def _date(raw: dict[str, Any], field: str) -> date:
    text = _text(raw, field)
    if not text:
        raise _Unreadable(field, "is missing; set it on the record in Xero")
    try:
        return parse_xero_date(text).date()
    except (ValueError, OverflowError):
        raise _Unreadable(field, f"{text!r} is not a date") from None


def _currency(value: object) -> str:
    code = str(value or "").strip().upper()
    if not code:
        raise _Unreadable("CurrencyCode", "is missing")
    if not is_currency(code):
        raise _Unreadable("CurrencyCode", f"{code!r} is not an ISO 4217 currency code")
    return code


def _amount(raw: dict[str, Any], field: str, currency: str) -> Decimal:
    value = raw.get(field)
    if value is None:
        raise _Unreadable(field, "is missing")
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _Unreadable(field, f"{value!r} is not an amount")
    try:
        amount = parse_amount(format(value, "f") if isinstance(value, Decimal) else str(value))
    except ValueError as exc:
        raise _Unreadable(field, str(exc)) from None
    if amount < 0:
        raise _Unreadable(field, f"{amount} is negative")
    quantum = Decimal(1).scaleb(-minor_units(currency))
    if amount != amount.quantize(quantum):
        raise _Unreadable(field, f"{amount} has more decimal places than {currency} uses")
    return amount.quantize(quantum)


def _updated(raw: dict[str, Any]) -> datetime | None:
    text = _text(raw, "UpdatedDateUTC")
    try:
        return parse_xero_date(text).astimezone(UTC) if text else None
    except ValueError:
        return None


def _parse_cursor(cursor: str | None) -> datetime | None:
    if cursor is None:
        return None
    try:
        since = datetime.fromisoformat(cursor)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise UserError(
            f"the Xero sync cursor {cursor!r} is not a timestamp with a timezone: "
            "clear it to sync everything again"
        )
    return since.astimezone(UTC)


def _format_time(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(microsecond=0).isoformat()
