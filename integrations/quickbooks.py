"""QuickBooks Online as a ledger source: customers, invoices and payments through the v3 query
endpoint, and reminder notes written back to an invoice's private note.

Incremental sync uses the query endpoint filtered on `MetaData.LastUpdatedTime >= cursor`, not the
CDC endpoint: queries page (`STARTPOSITION`/`MAXRESULTS`) through any number of changes and work
however old the cursor is, where CDC stops at 1,000 objects per entity and 30 days. What a query
cannot see is an invoice deleted outright (voided ones are seen and become status "void"); a full
sync (cursor None) is the remedy. Pages are ordered by Id, so a record changed while we page stays
where it was and nothing is skipped. The next cursor is the server's clock at the first answer less
a few minutes: changes made while the sync ran are fetched again next time (the upsert is idempotent)
rather than missed.

Every record is checked; one that cannot be read becomes a SourceProblem naming it and its field,
and the rest of the batch still syncs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

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
from integrations.oauth import OAuthClient, SourceError

DEFAULT_API_URL = "https://quickbooks.api.intuit.com"
MINOR_VERSION = "75"
PAGE_SIZE = 1000  # the most QuickBooks returns per query
ID_CHUNK = 100  # ids per `Id IN (...)` lookup
PRIVATE_NOTE_LIMIT = 4000
CURSOR_OVERLAP = timedelta(minutes=5)
STALE_OBJECT = "5010"  # QuickBooks' error code for an update with an old SyncToken

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Unreadable(Exception):
    """One field of one record is unusable; becomes a SourceProblem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")


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
        since = _parse_cursor(cursor)
        self._server_time = None
        batch = LedgerBatch(source=self.name, label=f"QuickBooks company {self.realm_id}")
        raw_customers = list(self._query("Customer", since))
        raw_invoices = list(self._query("Invoice", since))
        raw_payments = list(self._query("Payment", since))

        for raw in raw_customers:
            self._add_customer(batch, raw)
        self._add_missing_customers(batch, raw_invoices)
        numbers = {str(raw.get("Id")): _number(raw) for raw in raw_invoices}
        for raw in raw_invoices:
            self._add_invoice(batch, raw)
        self._look_up_numbers(numbers, raw_payments)
        for raw in raw_payments:
            self._add_payment(batch, raw, numbers)
        batch.cursor = self._next_cursor(cursor, [*raw_customers, *raw_invoices, *raw_payments])
        return batch

    # --- InvoiceNotes -------------------------------------------------------------------------

    def add_note(self, invoice_external_id: str, note: str) -> None:
        """Append `note` to the invoice's private note (a sparse update: nothing else changes)."""
        for attempt in (1, 2):
            invoice = self._read_invoice(invoice_external_id)
            body = {
                "Id": invoice_external_id,
                "SyncToken": invoice.get("SyncToken"),
                "sparse": True,
                "PrivateNote": _appended(invoice, note),
            }
            response = self.client.request(
                "POST",
                f"{self.base}/invoice",
                params={"minorversion": MINOR_VERSION},
                json_body=body,
                allow=(400,),
            )
            if response.status_code < 400:
                return
            if attempt == 1 and STALE_OBJECT in response.text:
                continue  # changed in QuickBooks since we read it: read again, append again
            raise SourceError(
                f"QuickBooks refused the note on invoice {_number(invoice)}: "
                f"{_fault(self.client.decode(response))}"
            )

    # --- Fetching -----------------------------------------------------------------------------

    def _query(
        self, entity: str, since: datetime | None, where: str = ""
    ) -> Iterator[dict[str, Any]]:
        clauses = [where] if where else []
        if since is not None:
            clauses.append(f"MetaData.LastUpdatedTime >= '{_format_time(since)}'")
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

    def _by_ids(self, entity: str, ids: list[str]) -> Iterator[dict[str, Any]]:
        for offset in range(0, len(ids), ID_CHUNK):
            quoted = ", ".join(_quote(i) for i in ids[offset : offset + ID_CHUNK])
            yield from self._query(entity, None, where=f"Id IN ({quoted})")

    def _read_invoice(self, invoice_id: str) -> dict[str, Any]:
        answer = self.client.json(
            "GET", f"{self.base}/invoice/{invoice_id}", params={"minorversion": MINOR_VERSION}
        )
        invoice = answer.get("Invoice")
        if not isinstance(invoice, dict):
            raise SourceError(f"QuickBooks returned no invoice with Id {invoice_id}")
        return invoice

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

    def _next_cursor(self, cursor: str | None, rows: list[dict[str, Any]]) -> str | None:
        if self._server_time is not None:
            return _format_time(self._server_time - CURSOR_OVERLAP)
        seen = [t for t in (_updated(row) for row in rows) if t is not None]
        return _format_time(max(seen)) if seen else cursor

    # --- Customers ----------------------------------------------------------------------------

    def _add_customer(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        customer_id = str(raw.get("Id") or "")
        name = str(raw.get("DisplayName") or raw.get("CompanyName") or "").strip()
        if not customer_id or not name:
            field = "Id" if not customer_id else "DisplayName"
            batch.problems.append(
                SourceProblem(
                    "customer",
                    customer_id or None,
                    f"customer {name or customer_id}: {field} is missing",
                )
            )
            return
        record = CustomerRecord(external_id=customer_id, name=name)
        contact_name = (
            " ".join(str(raw[k]).strip() for k in ("GivenName", "FamilyName") if raw.get(k)) or None
        )
        emails = self._emails(
            batch, customer_id, name, "PrimaryEmailAddr", _address(raw, "PrimaryEmailAddr")
        )
        phone = self._phone(batch, customer_id, name, raw)
        for index, email in enumerate(emails):
            _add_contact(
                record,
                ContactRecord(contact_name, email, phone if index == 0 else None, False, None),
            )
        if not emails and phone:
            _add_contact(record, ContactRecord(contact_name, None, phone, False, None))
        batch.customers[customer_id] = record

    def _emails(
        self, batch: LedgerBatch, customer_id: str, name: str, field: str, text: str | None
    ) -> list[str]:
        emails = []
        for part in re.split(r"[,;]", text or ""):
            if not part.strip():
                continue
            try:
                emails.append(_email(part.strip()))
            except ValueError as exc:
                batch.problems.append(
                    SourceProblem("customer", customer_id, f"customer {name}: {field} {exc}")
                )
        return emails

    def _phone(
        self, batch: LedgerBatch, customer_id: str, name: str, raw: dict[str, Any]
    ) -> str | None:
        for field in ("Mobile", "PrimaryPhone"):
            number = (raw.get(field) or {}).get("FreeFormNumber")
            if not number:
                continue
            try:
                return _phone_in(str(number), self.phone_region)
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
        refs = {_ref(raw, "CustomerRef"): raw.get("CustomerRef") or {} for raw in raw_invoices}
        missing = sorted(i for i in refs if i and i not in batch.customers)
        if not missing:
            return
        # One already reported as unreadable is not asked for again (nor reported twice).
        unreadable = {p.external_id for p in batch.problems if p.kind == "customer"}
        lookup = [i for i in missing if i not in unreadable]
        for raw in self._by_ids("Customer", lookup):
            self._add_customer(batch, raw)
        for customer_id in missing:
            if customer_id not in batch.customers:
                name = str(refs[customer_id].get("name") or f"QuickBooks customer {customer_id}")
                batch.customers[customer_id] = CustomerRecord(external_id=customer_id, name=name)

    # --- Invoices -----------------------------------------------------------------------------

    def _add_invoice(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        number = _number(raw)
        try:
            record = self._invoice(raw, number)
        except _Unreadable as exc:
            batch.problems.append(
                SourceProblem(
                    "invoice",
                    str(raw.get("Id") or "") or None,
                    f"invoice {number} (QuickBooks Id {raw.get('Id')}): {exc}",
                )
            )
            return
        customer = batch.customers[record.customer_external_id]  # see _add_missing_customers
        for email in self._emails(
            batch, customer.external_id, customer.name, "BillEmail", _address(raw, "BillEmail")
        ):
            _add_contact(customer, ContactRecord(None, email, None, False, None))
        batch.invoices.append(record)

    def _invoice(self, raw: dict[str, Any], number: str) -> InvoiceRecord:
        invoice_id = _required(raw, "Id")
        customer_id = _ref(raw, "CustomerRef")
        if not customer_id:
            raise _Unreadable("CustomerRef", "is missing")
        issued = _date(raw, "TxnDate")
        due = _date(raw, "DueDate")
        if due < issued:
            raise _Unreadable("DueDate", f"{due} is before the invoice date {issued}")
        currency = self._currency(raw)
        total = _amount(raw, "TotalAmt", currency)
        balance = _amount(raw, "Balance", currency)
        if balance > total:
            raise _Unreadable("Balance", f"{balance} is more than the total {total}")
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
        code = _ref(raw, "CurrencyRef") or self._company_currency()
        code = code.upper()
        if not is_currency(code):
            raise _Unreadable("CurrencyRef", f"{code!r} is not an ISO 4217 currency code")
        return code

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
        except _Unreadable as exc:
            batch.problems.append(
                SourceProblem("payment", payment_id, f"payment {payment_id}: {exc}")
            )

    def _payment(self, raw: dict[str, Any], numbers: dict[str, str]) -> PaymentRecord:
        payment_id = _required(raw, "Id")
        currency = self._currency(raw)
        allocated: dict[str, Decimal] = {}
        for txn_id, amount in _applied(raw):
            if txn_id not in numbers:
                raise _Unreadable(
                    "Line.LinkedTxn",
                    f"applies it to invoice Id {txn_id}, which QuickBooks did not return",
                )
            value = _money(amount, "Line.Amount", currency)
            if value:
                allocated[numbers[txn_id]] = allocated.get(numbers[txn_id], Decimal(0)) + value
        return PaymentRecord(
            external_id=payment_id,
            customer_external_id=_ref(raw, "CustomerRef") or None,
            received_on=_date(raw, "TxnDate"),
            amount=_amount(raw, "TotalAmt", currency),
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
        raise _Unreadable(field, "is missing")
    return str(value)


def _ref(raw: dict[str, Any], field: str) -> str:
    ref = raw.get(field)
    return str(ref.get("value") or "") if isinstance(ref, dict) else ""


def _address(raw: dict[str, Any], field: str) -> str | None:
    value = raw.get(field)
    return str(value.get("Address") or "") if isinstance(value, dict) else None


def _date(raw: dict[str, Any], field: str) -> date:
    value = raw.get(field)
    if not value:
        raise _Unreadable(field, "is missing; set it on the record in QuickBooks")
    text = str(value)[:10]
    if not _ISO_DATE.fullmatch(text):
        raise _Unreadable(field, f"{value!r} is not a date")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Unreadable(field, f"{value!r} is not a real date") from None


def _amount(raw: dict[str, Any], field: str, currency: str) -> Decimal:
    if raw.get(field) is None:
        raise _Unreadable(field, "is missing")
    return _money(raw[field], field, currency)


def _money(value: object, field: str, currency: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _Unreadable(field, f"{value!r} is not an amount")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise _Unreadable(field, str(exc)) from None
    if amount < 0:
        raise _Unreadable(field, f"{amount} is negative")
    quantum = Decimal(1).scaleb(-minor_units(currency))
    if amount != amount.quantize(quantum):
        raise _Unreadable(field, f"{amount} has more decimal places than {currency} uses")
    return amount.quantize(quantum)


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


def _add_contact(customer: CustomerRecord, contact: ContactRecord) -> None:
    if contact.email and any(
        c.email and c.email.lower() == contact.email.lower() for c in customer.contacts
    ):
        return
    customer.contacts.append(contact)


def _updated(raw: dict[str, Any]) -> datetime | None:
    text = (raw.get("MetaData") or {}).get("LastUpdatedTime")
    try:
        return datetime.fromisoformat(str(text)).astimezone(UTC) if text else None
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
            f"the QuickBooks sync cursor {cursor!r} is not a timestamp with a timezone: "
            "clear it to sync everything again"
        )
    return since.astimezone(UTC)


def _format_time(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(microsecond=0).isoformat()


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _appended(invoice: dict[str, Any], note: str) -> str:
    existing = str(invoice.get("PrivateNote") or "").rstrip()
    joined = f"{existing}\n{note}" if existing else note
    if len(joined) <= PRIVATE_NOTE_LIMIT:
        return joined
    room = PRIVATE_NOTE_LIMIT - len(existing) - 1  # what is left after the existing text
    if room < 20:
        raise SourceError(
            f"QuickBooks invoice {_number(invoice)}: its private note is full "
            f"({len(existing)} of {PRIVATE_NOTE_LIMIT} characters), so the reminder note was not "
            "added; shorten the private note in QuickBooks"
        )
    return f"{existing}\n{note[: room - 1]}…"


def _fault(body: Any) -> str:
    fault = body.get("Fault") if isinstance(body, dict) else None
    errors = fault.get("Error") if isinstance(fault, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(
            str(e.get("Detail") or e.get("Message")) for e in errors if isinstance(e, dict)
        )
    return "no reason given"
