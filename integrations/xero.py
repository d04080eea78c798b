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

from integrations.base.ledger import (
    ContactRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
    visible,
)
from integrations.csv_common import normalise_phone
from integrations.errors import SourceError, SourceUnavailable
from integrations.invoice_pdfs import source_pdf
from integrations.oauth_client import OAuthClient
from integrations.source_records import (
    UnreadableField,
    add_contact,
    add_missing_customers,
    amount,
    checked_email,
    currency_code,
    ledger_date,
    new_customer,
    next_cursor,
    parse_cursor,
    plain_text,
)
from integrations.tls import http_client

DEFAULT_API_URL = "https://api.xero.com"
PAGE_SIZE = 100  # what Xero returns per page
ID_CHUNK = 50  # contact ids per `IDs=` lookup
HISTORY_LIMIT = 250  # characters Xero keeps in one history note
NOT_YET_OWED = ("DRAFT", "SUBMITTED")
VOID = ("VOIDED", "DELETED")

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class XeroTenant:
    tenant_id: str
    name: str
    kind: str  # "ORGANISATION", ...


def xero_tenants(
    access_token: str, api_url: str = DEFAULT_API_URL, http: httpx.Client | None = None
) -> list[XeroTenant]:
    """The organisations the new connection may read (`GET /connections`), to pick the tenant."""
    client = http or http_client(timeout=30)
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
        since = parse_cursor(cursor, "Xero")
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
        rows = [*raw_contacts, *raw_invoices, *raw_payments]
        batch.cursor = next_cursor(cursor, self._server_time, (_updated(row) for row in rows))
        return batch

    # --- PdfSource ---------------------------------------------------------------------------

    def invoice_pdf(self, external_id: str, number: str, max_bytes: int) -> bytes:
        """The invoice as Xero renders it (`GET Invoices/{InvoiceID}` asking for a PDF)."""
        return source_pdf(
            self.client,
            number,
            f"{self.base}/Invoices/{external_id}",
            max_bytes,
            headers={"xero-tenant-id": self.tenant_id},
        )

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

    # --- Customers ----------------------------------------------------------------------------

    def _add_customer(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        contact_id, name = _text(raw, "ContactID"), _text(raw, "Name")
        record = new_customer(batch, "contact", contact_id, name, ("ContactID", "Name"))
        if record is None:
            return
        person = " ".join(p for p in (_text(raw, "FirstName"), _text(raw, "LastName")) if p)
        who = f"contact {name}"
        email = checked_email(batch, contact_id, who, "EmailAddress", _text(raw, "EmailAddress"))
        phone = self._phone(batch, contact_id, name, raw.get("Phones") or [])
        if email or phone:
            record.contacts.append(ContactRecord(person or None, email, phone, None, None))
        for other in raw.get("ContactPersons") or []:
            if not isinstance(other, dict) or other.get("IncludeInEmails") is False:
                continue
            address = checked_email(
                batch, contact_id, who, "ContactPersons.EmailAddress", _text(other, "EmailAddress")
            )
            if address:
                full = " ".join(
                    p for p in (_text(other, "FirstName"), _text(other, "LastName")) if p
                )
                add_contact(record, ContactRecord(full or None, address, None, None, None))
        batch.customers[contact_id] = record

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
        return normalise_phone(national, region)

    def _add_missing_customers(
        self, batch: LedgerBatch, raw_invoices: list[dict[str, Any]]
    ) -> None:
        """Invoices whose contact did not come with the contacts (an incremental sync, or an
        archived contact): fetch those contacts, or at least name them from the invoice."""

        def look_up(contact_ids: list[str]) -> None:
            for raw in self._contacts_by_id(contact_ids):
                self._add_customer(batch, raw)

        named: dict[str, str] = {}
        for raw in raw_invoices:
            contact = raw.get("Contact") or {}
            contact_id = _text(contact, "ContactID")
            named[contact_id] = _text(contact, "Name") or f"Xero contact {contact_id}"
        add_missing_customers(batch, named, look_up)

    # --- Invoices and payments ------------------------------------------------------------------

    def _add_invoice(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        number = _text(raw, "InvoiceNumber") or _text(raw, "InvoiceID") or "?"
        try:
            record = _invoice(raw, number)
        except UnreadableField as exc:
            batch.problems.append(
                SourceProblem(
                    "invoice",
                    visible(_text(raw, "InvoiceID")) or None,
                    f"invoice {visible(number)}: {exc}",
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
        except UnreadableField as exc:
            batch.problems.append(
                SourceProblem("payment", payment_id or None, f"payment {payment_id}: {exc}")
            )


def _invoice(raw: dict[str, Any], number: str) -> InvoiceRecord:
    invoice_id = _required(raw, "InvoiceID")
    plain_text(number, "InvoiceNumber")
    contact_id = _text(raw.get("Contact") or {}, "ContactID")
    if not contact_id:
        raise UnreadableField("Contact", "is missing")
    status = _text(raw, "Status").upper()
    issued = _date(raw, "Date")
    # A voided invoice stops every follow-up whatever its dates; Xero may have none due.
    due = _date(raw, "DueDate") if status not in VOID or raw.get("DueDate") else issued
    if due < issued:
        raise UnreadableField("DueDate", f"{due} is before the invoice date {issued}")
    currency = _currency(raw.get("CurrencyCode"))
    total = amount(raw, "Total", currency)
    balance = amount(raw, "AmountDue", currency)
    if status in VOID or status == "PAID":
        balance = Decimal(0).quantize(total)
    if balance > total:
        raise UnreadableField("AmountDue", f"{balance} is more than the total {total}")
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
        raise UnreadableField("Invoice.InvoiceNumber", "is missing")
    currency = _currency(invoice.get("CurrencyCode"))
    paid = amount(raw, "Amount", currency)
    return PaymentRecord(
        external_id=payment_id,
        customer_external_id=_text(invoice.get("Contact") or {}, "ContactID") or None,
        received_on=_date(raw, "Date"),
        amount=paid,
        currency=currency,
        reference=_text(raw, "Reference") or None,
        allocations=((number, paid),) if paid else (),
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
        raise UnreadableField(field, "is missing")
    return value


def _date(raw: dict[str, Any], field: str) -> date:
    text = _text(raw, field)
    if not text:
        raise UnreadableField(field, "is missing; set it on the record in Xero")
    try:
        day = parse_xero_date(text).date()
    except (ValueError, OverflowError):
        raise UnreadableField(field, f"{text!r} is not a date") from None
    return ledger_date(day, field)


def _currency(value: object) -> str:
    code = str(value or "").strip().upper()
    if not code:
        raise UnreadableField("CurrencyCode", "is missing")
    return currency_code(code, "CurrencyCode")


def _updated(raw: dict[str, Any]) -> datetime | None:
    text = _text(raw, "UpdatedDateUTC")
    try:
        return parse_xero_date(text).astimezone(UTC) if text else None
    except ValueError:
        return None
