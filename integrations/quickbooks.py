"""QuickBooks Online as a ledger source: customers, invoices and payments through the v3 query
endpoint, and reminder notes written back as notes attached to the invoice (never its private
note, which customers' statements show).

Incremental sync uses the query endpoint filtered on `MetaData.LastUpdatedTime >= cursor`, not the
CDC endpoint: queries page (`STARTPOSITION`/`MAXRESULTS`) through any number of changes and work
however old the cursor is, where CDC stops at 1,000 objects per entity and 30 days. What a query
cannot see is an invoice deleted outright (voided ones are seen and become status "void"): those
are asked of change data capture (`cdc?entities=Invoice`), whose answer names each deleted invoice
with status "Deleted". CDC reaches back 30 days: a cursor older than that (no sync for a month) is
a full sync instead, which returns every invoice QuickBooks still has, so the batch is `complete`
and an invoice stored from QuickBooks that it lacks was deleted (unless it lacks too many:
bot/ledger/deleted_invoices.py). Pages are ordered by Id, so a record changed while we page stays
where it was and nothing is skipped. The next cursor is the server's clock at the first answer
less a few minutes: changes made while the sync ran are fetched again next time (the upsert is
idempotent) rather than missed.

Every record is checked; one that cannot be read becomes a SourceProblem naming it and its field,
and the rest of the batch still syncs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from integrations.base.ledger import (
    ContactRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
    visible,
)
from integrations.csv_common import normalise_phone
from integrations.errors import SourceError
from integrations.invoice_pdfs import source_pdf
from integrations.oauth_client import OAuthClient
from integrations.source_records import (
    UnreadableField,
    add_contact,
    add_missing_customers,
    amount,
    checked_email,
    currency_code,
    format_time,
    ledger_date,
    money,
    new_customer,
    next_cursor,
    parse_cursor,
    plain_text,
)

DEFAULT_API_URL = "https://quickbooks.api.intuit.com"
MINOR_VERSION = "75"
PAGE_SIZE = 1000  # the most QuickBooks returns per query
ID_CHUNK = 100  # ids per `Id IN (...)` lookup
CDC_DAYS = 29  # change data capture reaches back 30 days; a day is left for clocks
ATTACHABLE_NOTE_LIMIT = 2000  # the most an Attachable's Note holds

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class QuickBooksSource:
    """An IncrementalSource and InvoiceNotes over one QuickBooks Online company (realm)."""

    name = "quickbooks"

    def __init__(
        self,
        client: OAuthClient,
        realm_id: str,
        api_url: str = DEFAULT_API_URL,
        home_currency: str | None = None,
        phone_region: str = "US",
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.realm_id = realm_id
        self.base = f"{api_url.rstrip('/')}/v3/company/{realm_id}"
        self.home_currency = home_currency
        self.phone_region = phone_region
        self.page_size = page_size
        self._server_time: datetime | None = None

    # --- IncrementalSource ---------------------------------------------------------------------

    def fetch_since(self, cursor: str | None) -> LedgerBatch:
        return self.fetch_since_and_again(cursor, {})

    # --- RefetchingSource ----------------------------------------------------------------------

    def fetch_since_and_again(
        self, cursor: str | None, again: Mapping[str, Sequence[str]]
    ) -> LedgerBatch:
        since = parse_cursor(cursor, "QuickBooks")
        if since is not None and since < self.client.now() - timedelta(days=CDC_DAYS):
            since = None  # beyond change data capture's reach: a full sync sees deletions too
        self._server_time = None
        batch = LedgerBatch(source=self.name, label=f"QuickBooks company {self.realm_id}")
        raw_customers = list(self._query("Customer", since))
        raw_invoices = list(self._query("Invoice", since))
        raw_payments = list(self._query("Payment", since))
        changed = [*raw_customers, *raw_invoices, *raw_payments]
        if since is not None:  # a full sync has them all already
            for entity, records in (
                ("Customer", raw_customers),
                ("Invoice", raw_invoices),
                ("Payment", raw_payments),
            ):
                fetched = {str(row.get("Id")) for row in records}
                wanted = sorted(set(again.get(entity.lower(), ())) - fetched)
                records.extend(self._by_ids(entity, wanted))

        for raw in raw_customers:
            self._add_customer(batch, raw)
        self._add_missing_customers(batch, raw_invoices)
        numbers = {str(raw.get("Id")): _number(raw) for raw in raw_invoices}
        for raw in raw_invoices:
            self._add_invoice(batch, raw)
        self._look_up_numbers(numbers, raw_payments)
        for raw in raw_payments:
            self._add_payment(batch, raw, numbers)
        # the records fetched again, changed before `cursor`, never take it back
        batch.cursor = next_cursor(cursor, self._server_time, (_updated(row) for row in changed))
        if since is None:
            batch.complete = True
        else:
            batch.deleted_invoices = self._deleted_invoices(since)
        return batch

    # --- PdfSource ---------------------------------------------------------------------------

    def invoice_pdf(self, external_id: str, number: str, max_bytes: int) -> bytes:
        """The invoice as QuickBooks renders it (`GET invoice/{id}/pdf`)."""
        return source_pdf(
            self.client,
            number,
            f"{self.base}/invoice/{external_id}/pdf",
            max_bytes,
            params={"minorversion": MINOR_VERSION},
        )

    # --- InvoiceNotes -------------------------------------------------------------------------

    def add_note(self, invoice_external_id: str, note: str) -> None:
        """Attach `note` to the invoice as a note of its own (an Attachable with no file, never
        sent with the invoice). Never in the invoice's PrivateNote: QuickBooks shows that, the
        "message displayed on statement", as the invoice's line on the customer's statement."""
        body = {
            "Note": _cut(note, ATTACHABLE_NOTE_LIMIT),
            "AttachableRef": [
                {
                    "EntityRef": {"type": "Invoice", "value": invoice_external_id},
                    "IncludeOnSend": False,
                }
            ],
        }
        response = self.client.request(
            "POST",
            f"{self.base}/attachable",
            params={"minorversion": MINOR_VERSION},
            json_body=body,
            allow=(400,),
        )
        if response.status_code >= 400:
            raise SourceError(
                f"QuickBooks refused the note on invoice Id {invoice_external_id}: "
                f"{_fault(self.client.decode(response))}"
            )

    # --- Fetching -----------------------------------------------------------------------------

    def _query(
        self, entity: str, since: datetime | None, where: str = ""
    ) -> Iterator[dict[str, Any]]:
        clauses = [where] if where else []
        if since is not None:
            clauses.append(f"MetaData.LastUpdatedTime >= '{format_time(since)}'")
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params = {"minorversion": MINOR_VERSION}
        if entity == "Invoice":
            params["include"] = "invoiceLink"
        start = 1
        while True:
            statement = (
                f"SELECT * FROM {entity}{condition} ORDERBY Id "
                f"STARTPOSITION {start} MAXRESULTS {self.page_size}"
            )
            answer = self.client.json(
                "GET", f"{self.base}/query", params={**params, "query": statement}
            )
            self._note_server_time(answer)
            rows = (answer.get("QueryResponse") or {}).get(entity) or []
            yield from (row for row in rows if isinstance(row, dict))
            if len(rows) < self.page_size:
                return
            start += len(rows)

    def _deleted_invoices(self, since: datetime) -> list[str]:
        """The Ids of invoices deleted since `since` (within CDC_DAYS), from change data
        capture. It answers at most 1,000 changed invoices, far more than change between syncs."""
        answer = self.client.json(
            "GET",
            f"{self.base}/cdc",
            params={
                "minorversion": MINOR_VERSION,
                "entities": "Invoice",
                "changedSince": format_time(since),
            },
        )
        found: list[str] = []
        for capture in answer.get("CDCResponse") or []:
            for response in (capture or {}).get("QueryResponse") or []:
                for row in (response or {}).get("Invoice") or []:
                    if isinstance(row, dict) and row.get("status") == "Deleted" and row.get("Id"):
                        found.append(str(row["Id"]))
        return found

    def _by_ids(self, entity: str, ids: list[str]) -> Iterator[dict[str, Any]]:
        for offset in range(0, len(ids), ID_CHUNK):
            quoted = ", ".join(_quote(i) for i in ids[offset : offset + ID_CHUNK])
            yield from self._query(entity, None, where=f"Id IN ({quoted})")

    def _company_currency(self) -> str:
        if self.home_currency is None:
            answer = self.client.json(
                "GET", f"{self.base}/preferences", params={"minorversion": MINOR_VERSION}
            )
            prefs = answer.get("Preferences") or {}
            home = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
            if not home:
                raise SourceError("QuickBooks did not say the company's home currency")
            self.home_currency = str(home)
        return self.home_currency

    def _note_server_time(self, answer: dict[str, Any]) -> None:
        if self._server_time is None and isinstance(answer.get("time"), str):
            # An unreadable time leaves the cursor to the records' own times.
            with suppress(ValueError):
                self._server_time = datetime.fromisoformat(answer["time"]).astimezone(UTC)

    # --- Customers ----------------------------------------------------------------------------

    def _add_customer(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        customer_id = str(raw.get("Id") or "")
        name = str(raw.get("DisplayName") or raw.get("CompanyName") or "").strip()
        record = new_customer(batch, "customer", customer_id, name, ("Id", "DisplayName"))
        if record is None:
            return
        contact_name = (
            " ".join(str(raw[k]).strip() for k in ("GivenName", "FamilyName") if raw.get(k)) or None
        )
        emails = _emails(
            batch, customer_id, name, "PrimaryEmailAddr", _address(raw, "PrimaryEmailAddr")
        )
        phone = self._phone(batch, customer_id, name, raw)
        for index, email in enumerate(emails):
            add_contact(
                record,
                ContactRecord(contact_name, email, phone if index == 0 else None, None, None),
            )
        if not emails and phone:
            add_contact(record, ContactRecord(contact_name, None, phone, None, None))
        batch.customers[customer_id] = record

    def _phone(
        self, batch: LedgerBatch, customer_id: str, name: str, raw: dict[str, Any]
    ) -> str | None:
        for field in ("Mobile", "PrimaryPhone"):
            number = (raw.get(field) or {}).get("FreeFormNumber")
            if not number:
                continue
            try:
                return normalise_phone(str(number), self.phone_region)
            except ValueError as exc:
                batch.problems.append(
                    SourceProblem("customer", customer_id, f"customer {name}: {field} {exc}")
                )
        return None

    def _add_missing_customers(
        self, batch: LedgerBatch, raw_invoices: list[dict[str, Any]]
    ) -> None:
        """Invoices whose customer did not come with the customers (an incremental sync, or an
        inactive customer): fetch those customers, or at least name them from the invoice."""

        def look_up(customer_ids: list[str]) -> None:
            for raw in self._by_ids("Customer", customer_ids):
                self._add_customer(batch, raw)

        named = {_ref(raw, "CustomerRef"): _customer_name(raw) for raw in raw_invoices}
        add_missing_customers(batch, named, look_up)

    # --- Invoices -----------------------------------------------------------------------------

    def _add_invoice(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        number = _number(raw)
        try:
            record = self._invoice(raw, number)
        except UnreadableField as exc:
            batch.problems.append(
                SourceProblem(
                    "invoice",
                    str(raw.get("Id") or "") or None,
                    f"invoice {visible(number)} (QuickBooks Id {visible(str(raw.get('Id')))}): "
                    f"{exc}",
                )
            )
            return
        customer = batch.customers[record.customer_external_id]  # see _add_missing_customers
        for email in _emails(
            batch, customer.external_id, customer.name, "BillEmail", _address(raw, "BillEmail")
        ):
            add_contact(customer, ContactRecord(None, email, None, None, None))
        batch.invoices.append(record)

    def _invoice(self, raw: dict[str, Any], number: str) -> InvoiceRecord:
        invoice_id = _required(raw, "Id")
        plain_text(number, "DocNumber")
        customer_id = _ref(raw, "CustomerRef")
        if not customer_id:
            raise UnreadableField("CustomerRef", "is missing")
        issued = _date(raw, "TxnDate")
        due = _date(raw, "DueDate")
        if due < issued:
            raise UnreadableField("DueDate", f"{due} is before the invoice date {issued}")
        currency = self._currency(raw)
        total = amount(raw, "TotalAmt", currency)
        balance = amount(raw, "Balance", currency)
        if balance > total:
            raise UnreadableField("Balance", f"{balance} is more than the total {total}")
        voided = total == 0 and str(raw.get("PrivateNote") or "").startswith("Voided")
        return InvoiceRecord(
            customer_external_id=customer_id,
            number=number,
            issue_date=issued,
            due_date=due,
            currency=currency,
            total=total,
            balance=balance,
            status="void" if voided else None,
            payment_link=str(raw["InvoiceLink"]) if raw.get("InvoiceLink") else None,
            external_id=invoice_id,
        )

    def _currency(self, raw: dict[str, Any]) -> str:
        return currency_code(_ref(raw, "CurrencyRef") or self._company_currency(), "CurrencyRef")

    # --- Payments -----------------------------------------------------------------------------

    def _look_up_numbers(self, numbers: dict[str, str], raw_payments: list[dict[str, Any]]) -> None:
        wanted = sorted(
            {txn_id for raw in raw_payments for txn_id, _ in _applied(raw)} - numbers.keys()
        )
        for raw in self._by_ids("Invoice", wanted):
            numbers[str(raw.get("Id"))] = _number(raw)

    def _add_payment(
        self, batch: LedgerBatch, raw: dict[str, Any], numbers: dict[str, str]
    ) -> None:
        payment_id = str(raw.get("Id") or "") or None
        try:
            batch.payments.append(self._payment(raw, numbers))
        except UnreadableField as exc:
            batch.problems.append(
                SourceProblem("payment", payment_id, f"payment {payment_id}: {exc}")
            )

    def _payment(self, raw: dict[str, Any], numbers: dict[str, str]) -> PaymentRecord:
        payment_id = _required(raw, "Id")
        currency = self._currency(raw)
        allocated: dict[str, Decimal] = {}
        for txn_id, applied in _applied(raw):
            if txn_id not in numbers:
                raise UnreadableField(
                    "Line.LinkedTxn",
                    f"applies it to invoice Id {txn_id}, which QuickBooks did not return",
                )
            value = money(applied, "Line.Amount", currency)
            if value:
                allocated[numbers[txn_id]] = allocated.get(numbers[txn_id], Decimal(0)) + value
        return PaymentRecord(
            external_id=payment_id,
            customer_external_id=_ref(raw, "CustomerRef") or None,
            received_on=_date(raw, "TxnDate"),
            amount=amount(raw, "TotalAmt", currency),
            currency=currency,
            reference=str(raw["PaymentRefNum"]) if raw.get("PaymentRefNum") else None,
            allocations=tuple(allocated.items()),
        )


# --- Reading fields ----------------------------------------------------------------------------


def _number(raw: dict[str, Any]) -> str:
    return str(raw.get("DocNumber") or raw.get("Id") or "?")


def _required(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    if value in (None, ""):
        raise UnreadableField(field, "is missing")
    return str(value)


def _ref(raw: dict[str, Any], field: str) -> str:
    ref = raw.get(field)
    return str(ref.get("value") or "") if isinstance(ref, dict) else ""


def _customer_name(raw_invoice: dict[str, Any]) -> str:
    """The customer's name as an invoice gives it, for a customer QuickBooks did not return."""
    ref = raw_invoice.get("CustomerRef")
    name = ref.get("name") if isinstance(ref, dict) else None
    return str(name or f"QuickBooks customer {_ref(raw_invoice, 'CustomerRef')}")


def _address(raw: dict[str, Any], field: str) -> str | None:
    value = raw.get(field)
    return str(value.get("Address") or "") if isinstance(value, dict) else None


def _date(raw: dict[str, Any], field: str) -> date:
    value = raw.get(field)
    if not value:
        raise UnreadableField(field, "is missing; set it on the record in QuickBooks")
    text = str(value)[:10]
    if not _ISO_DATE.fullmatch(text):
        raise UnreadableField(field, f"{value!r} is not a date")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UnreadableField(field, f"{value!r} is not a real date") from None
    return ledger_date(day, field)


def _emails(
    batch: LedgerBatch, customer_id: str, name: str, field: str, text: str | None
) -> list[str]:
    """The addresses in a field that may hold several, separated by commas or semicolons."""
    parts = (part.strip() for part in re.split(r"[,;]", text or ""))
    found = (checked_email(batch, customer_id, f"customer {name}", field, p) for p in parts)
    return [email for email in found if email]


def _applied(raw: dict[str, Any]) -> Iterator[tuple[str, object]]:
    """(invoice Id, amount) for each payment line linked to an invoice."""
    for line in raw.get("Line") or []:
        if not isinstance(line, dict):
            continue
        for linked in line.get("LinkedTxn") or []:
            if (
                isinstance(linked, dict)
                and linked.get("TxnType") == "Invoice"
                and linked.get("TxnId")
            ):
                yield str(linked["TxnId"]), line.get("Amount")


def _updated(raw: dict[str, Any]) -> datetime | None:
    text = (raw.get("MetaData") or {}).get("LastUpdatedTime")
    try:
        return datetime.fromisoformat(str(text)).astimezone(UTC) if text else None
    except ValueError:
        return None


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cut(note: str, limit: int) -> str:
    return note if len(note) <= limit else note[: limit - 1] + "…"


def _fault(body: Any) -> str:
    fault = body.get("Fault") if isinstance(body, dict) else None
    errors = fault.get("Error") if isinstance(fault, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(
            str(e.get("Detail") or e.get("Message")) for e in errors if isinstance(e, dict)
        )
    return "no reason given"
