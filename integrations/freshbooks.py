"""FreshBooks as a ledger source: clients, invoices and payments through the accounting API, and
reminder notes written back to the client's internal note.

A FreshBooks login may belong to several businesses; `freshbooks_accounts` lists them (the
identity endpoint, `/auth/api/v1/users/me`) so the connect step can keep the chosen account id
as the tenant. Every accounting path names that account id.

Lists are read `page=1, 2, ...` (100 a page, FreshBooks' most) up to the page FreshBooks says is
the last (`pages`). FreshBooks writes every `updated` time as a plain `YYYY-MM-DD HH:MM:SS` in
US/Eastern, whatever the business's own zone; they are read as such and kept in UTC. Incremental
sync sends `search[updated_min]`, which FreshBooks compares by day only: the cursor becomes its
US/Eastern date, so each sync reads that whole day again (the upsert is idempotent) rather than
miss part of it. The next cursor is FreshBooks' clock at the first answer (its Date header) less a
few minutes; without one, the latest `updated` seen.

Lists leave deleted records out, so deleted invoices are asked for on their own
(`search[vis_state]=1`) and come back as status "void": deleting is FreshBooks' only way to void
an invoice. Drafts are not owed yet and are left out. A deleted payment is left out too: the
invoice's `outstanding`, synced with it, already says the money is owed again. Invoices carry no
payment link: FreshBooks makes a share link on request only, one invoice at a time.

FreshBooks prints an invoice's `notes` on the invoice the client sees, so a reminder note never
goes there: it is appended to the client's internal note (seen by the business only), naming the
invoice. FreshBooks has no version token to guard that read-then-write, so an edit a person makes
to the same note in the moment between the two is overwritten.

Every record is checked; one that cannot be read becomes a SourceProblem naming it and its field,
and the rest of the batch still syncs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from integrations.base import (
    ContactRecord,
    InvoiceRecord,
    LedgerBatch,
    PaymentRecord,
    SourceProblem,
)
from integrations.csv_common import normalise_phone
from integrations.oauth import Provider, SourceError, SourceUnavailable, json_or_empty
from integrations.oauth_client import OAuthClient
from integrations.source_records import (
    UnreadableField,
    add_missing_customers,
    checked_email,
    currency_code,
    money,
    new_customer,
    next_cursor,
    parse_cursor,
)

DEFAULT_API_URL = "https://api.freshbooks.com"
AUTHORIZE_URL = "https://auth.freshbooks.com/oauth/authorize"
TOKEN_URL = "https://api.freshbooks.com/auth/oauth/token"
# What the source reads, and the client note it writes; the app must be registered for all five.
SCOPES = (
    "user:profile:read",
    "user:clients:read",
    "user:clients:write",
    "user:invoices:read",
    "user:payments:read",
)
PAGE_SIZE = 100  # FreshBooks silently caps per_page at 100
DELETED = 1  # the vis_state of a deleted record
DRAFT_STATUS = 1  # the old numeric invoice status of a draft
EASTERN = ZoneInfo("America/New_York")  # FreshBooks' "US/Eastern"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def freshbooks_provider(
    client_id: str,
    client_secret: str,
    authorize_endpoint: str = AUTHORIZE_URL,
    token_endpoint: str = TOKEN_URL,
) -> Provider:
    return Provider(
        name="freshbooks",
        label="FreshBooks",
        env_prefix="FRESHBOOKS",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint,
        token_endpoint=token_endpoint,
        scopes=SCOPES,
    )


@dataclass(frozen=True, slots=True)
class FreshBooksAccount:
    account_id: str  # what the accounting API's paths name
    name: str  # the business's name
    role: str  # the login's role there: "owner", "business_employee", ...


def freshbooks_accounts(
    access_token: str, api_url: str = DEFAULT_API_URL, http: httpx.Client | None = None
) -> list[FreshBooksAccount]:
    """The businesses the new connection's login belongs to, to pick the account."""
    client = http or httpx.Client(timeout=30)
    try:
        response = client.get(
            f"{api_url.rstrip('/')}/auth/api/v1/users/me",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise SourceUnavailable(
            f"cannot reach FreshBooks ({exc.__class__.__name__}): try again"
        ) from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise SourceError(
            f"FreshBooks refused to list the businesses of this login ({response.status_code}): "
            "check the app has the user:profile:read scope, then run `arbot connect freshbooks`"
        )
    memberships = (json_or_empty(response).get("response") or {}).get("business_memberships")
    accounts = []
    for membership in memberships or []:
        business = membership.get("business") if isinstance(membership, dict) else None
        if isinstance(business, dict) and business.get("account_id"):
            accounts.append(
                FreshBooksAccount(
                    str(business["account_id"]),
                    _text(business, "name"),
                    _text(membership, "role"),
                )
            )
    return accounts


class FreshBooksSource:
    """An IncrementalSource and InvoiceNotes over one FreshBooks account (business)."""

    name = "freshbooks"

    def __init__(
        self,
        client: OAuthClient,
        account_id: str,
        api_url: str = DEFAULT_API_URL,
        phone_region: str = "US",
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.account_id = account_id
        self.base = f"{api_url.rstrip('/')}/accounting/account/{account_id}"
        self.phone_region = phone_region
        self.page_size = page_size
        self._server_time: datetime | None = None

    # --- IncrementalSource ---------------------------------------------------------------------

    def fetch_since(self, cursor: str | None) -> LedgerBatch:
        since = parse_cursor(cursor, "FreshBooks")
        self._server_time = None
        batch = LedgerBatch(source=self.name, label=f"FreshBooks account {self.account_id}")
        changed = {"search[updated_min]": f"{since.astimezone(EASTERN):%Y-%m-%d}"} if since else {}
        deleted = {**changed, "search[vis_state]": str(DELETED)}
        raw_clients = list(self._pages("users/clients", "clients", changed))
        raw_invoices = [
            *self._pages("invoices/invoices", "invoices", changed),
            *self._pages("invoices/invoices", "invoices", deleted),
        ]
        raw_payments = list(self._pages("payments/payments", "payments", changed))

        for raw in raw_clients:
            self._add_customer(batch, raw)
        owed = [raw for raw in raw_invoices if not _draft(raw)]
        self._add_missing_customers(batch, owed, raw_payments)
        for raw in owed:
            self._add_invoice(batch, raw)
        numbers = {_id(raw, "id"): _number(raw) for raw in raw_invoices}
        self._look_up_numbers(numbers, raw_payments)
        for raw in raw_payments:
            self._add_payment(batch, raw, numbers)
        rows = [*raw_clients, *raw_invoices, *raw_payments]
        batch.cursor = next_cursor(cursor, self._server_time, (_updated(row) for row in rows))
        return batch

    # --- InvoiceNotes -------------------------------------------------------------------------

    def add_note(self, invoice_external_id: str, note: str) -> None:
        """Append `note`, naming the invoice, to its client's internal note (never the invoice's
        own notes: the client reads those)."""
        invoice = self._read("invoices/invoices", invoice_external_id, "invoice")
        client_id = _id(invoice, "customerid")
        if not client_id:
            raise SourceError(
                f"FreshBooks invoice {_number(invoice)} names no client, so its note was not added"
            )
        client = self._read("users/clients", client_id, "client")
        existing = str(client.get("note") or "").rstrip()
        line = f"Invoice {_number(invoice)}: {note}"
        response = self.client.request(
            "PUT",
            f"{self.base}/users/clients/{client_id}",
            json_body={"client": {"note": f"{existing}\n{line}" if existing else line}},
            allow=(400, 404, 422),
        )
        if response.status_code >= 400:
            raise SourceError(
                f"FreshBooks refused the note on client {_client_label(client)} "
                f"(invoice {_number(invoice)}): {_errors(response)}"
            )

    # --- Fetching -----------------------------------------------------------------------------

    def _pages(
        self, resource: str, key: str, search: Mapping[str, str]
    ) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            params = {**search, "page": str(page), "per_page": str(self.page_size)}
            response = self.client.request("GET", f"{self.base}/{resource}", params=params)
            self._note_server_time(response)
            result = _result(self.client.decode(response), resource)
            rows = result.get(key) or []
            yield from (row for row in rows if isinstance(row, dict))
            last = result.get("pages")
            done = page >= last if isinstance(last, int) else len(rows) < self.page_size
            if not rows or done:
                return
            page += 1

    def _look_up(self, resource: str, record_id: str, key: str) -> dict[str, Any] | None:
        """One record by id, deleted ones included; None when FreshBooks has none."""
        response = self.client.request("GET", f"{self.base}/{resource}/{record_id}", allow=(404,))
        if response.status_code == 404:
            return None
        record = _result(self.client.decode(response), resource).get(key)
        return record if isinstance(record, dict) else None

    def _read(self, resource: str, record_id: str, key: str) -> dict[str, Any]:
        record = self._look_up(resource, record_id, key)
        if record is None:
            raise SourceError(f"FreshBooks has no {key} with id {record_id}")
        return record

    def _note_server_time(self, response: httpx.Response) -> None:
        if self._server_time is None and response.headers.get("Date"):
            # An unreadable Date leaves the cursor to the records' own times.
            with suppress(TypeError, ValueError):
                moment = parsedate_to_datetime(response.headers["Date"])
                self._server_time = moment.astimezone(UTC) if moment.tzinfo else None

    # --- Clients ------------------------------------------------------------------------------

    def _add_customer(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        client_id = _id(raw, "id")
        person = _person(raw)
        name = _text(raw, "organization") or person
        record = new_customer(batch, "client", client_id, name, ("id", "organization"))
        if record is None:
            return
        who = f"client {name}"
        email = checked_email(batch, client_id, who, "email", _text(raw, "email"))
        phone = self._phone(batch, client_id, who, raw)
        if email or phone:
            record.contacts.append(ContactRecord(person or None, email, phone, False, None))
        batch.customers[client_id] = record

    def _phone(
        self, batch: LedgerBatch, client_id: str, who: str, raw: dict[str, Any]
    ) -> str | None:
        for field in ("mob_phone", "bus_phone"):
            number = _text(raw, field)
            if not number:
                continue
            try:
                return normalise_phone(number, self.phone_region)
            except ValueError as exc:
                batch.problems.append(SourceProblem("customer", client_id, f"{who}: {field} {exc}"))
        return None

    def _add_missing_customers(
        self, batch: LedgerBatch, invoices: list[dict[str, Any]], payments: list[dict[str, Any]]
    ) -> None:
        """Clients of invoices and payments that did not come with the clients (an incremental
        sync, or a deleted client): fetch them, or at least name them from the invoice."""

        def look_up(client_ids: list[str]) -> None:
            for client_id in client_ids:
                raw = self._look_up("users/clients", client_id, "client")
                if raw is not None:
                    self._add_customer(batch, raw)

        named = {_id(raw, "customerid"): _client_name(raw) for raw in invoices}
        for raw in payments:
            named.setdefault(_id(raw, "clientid"), f"FreshBooks client {_id(raw, 'clientid')}")
        add_missing_customers(batch, named, look_up)

    # --- Invoices and payments ------------------------------------------------------------------

    def _add_invoice(self, batch: LedgerBatch, raw: dict[str, Any]) -> None:
        number = _number(raw)
        try:
            batch.invoices.append(_invoice(raw, number))
        except UnreadableField as exc:
            invoice_id = _id(raw, "id")
            batch.problems.append(
                SourceProblem(
                    "invoice",
                    invoice_id or None,
                    f"invoice {number} (FreshBooks id {invoice_id or '?'}): {exc}",
                )
            )

    def _look_up_numbers(self, numbers: dict[str, str], payments: list[dict[str, Any]]) -> None:
        wanted = sorted({_id(raw, "invoiceid") for raw in payments} - numbers.keys() - {""})
        for invoice_id in wanted:
            raw = self._look_up("invoices/invoices", invoice_id, "invoice")
            if raw is not None:
                numbers[invoice_id] = _number(raw)

    def _add_payment(
        self, batch: LedgerBatch, raw: dict[str, Any], numbers: dict[str, str]
    ) -> None:
        payment_id = _id(raw, "id")
        try:
            batch.payments.append(_payment(raw, numbers))
        except UnreadableField as exc:
            batch.problems.append(
                SourceProblem("payment", payment_id or None, f"payment {payment_id or '?'}: {exc}")
            )


def _invoice(raw: dict[str, Any], number: str) -> InvoiceRecord:
    invoice_id = _required(raw, "id")
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
    code = _text(amount_field, "code") if isinstance(amount_field, dict) else ""
    if not code:
        raise UnreadableField("amount.code", "is missing")
    currency = currency_code(code, "amount.code")
    paid = _money(raw, "amount", currency)
    invoice_id = _id(raw, "invoiceid")
    if invoice_id and invoice_id not in numbers:
        raise UnreadableField(
            "invoiceid", f"applies it to invoice id {invoice_id}, which FreshBooks did not return"
        )
    return PaymentRecord(
        external_id=payment_id,
        customer_external_id=_id(raw, "clientid") or None,
        received_on=_date(raw, "date"),
        amount=paid,
        currency=currency,
        reference=_text(raw, "transactionid") or None,
        allocations=((numbers[invoice_id], paid),) if invoice_id and paid else (),
    )


# --- Reading fields ----------------------------------------------------------------------------


def parse_freshbooks_time(text: str) -> datetime:
    """An `updated` time (`YYYY-MM-DD HH:MM:SS`, US/Eastern by FreshBooks' rule) in UTC."""
    naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    return naive.replace(tzinfo=EASTERN).astimezone(UTC)


def _text(raw: dict[str, Any], field: str) -> str:
    value = raw.get(field)
    return str(value).strip() if value is not None else ""


def _id(raw: dict[str, Any], field: str) -> str:
    """An id field; FreshBooks writes 0 for "none"."""
    value = _text(raw, field)
    return "" if value == "0" else value


def _required(raw: dict[str, Any], field: str) -> str:
    value = _id(raw, field)
    if not value:
        raise UnreadableField(field, "is missing")
    return value


def _number(raw: dict[str, Any]) -> str:
    return _text(raw, "invoice_number") or _id(raw, "id") or "?"


def _person(raw: dict[str, Any]) -> str:
    return " ".join(p for p in (_text(raw, "fname"), _text(raw, "lname")) if p)


def _client_name(raw_invoice: dict[str, Any]) -> str:
    """The client's name as an invoice gives it, for a client FreshBooks did not return."""
    return (
        _text(raw_invoice, "current_organization")
        or _text(raw_invoice, "organization")
        or _person(raw_invoice)
        or f"FreshBooks client {_id(raw_invoice, 'customerid')}"
    )


def _client_label(raw_client: dict[str, Any]) -> str:
    return _text(raw_client, "organization") or _person(raw_client) or _id(raw_client, "id")


def _draft(raw: dict[str, Any]) -> bool:
    status = _text(raw, "v3_status").lower()
    return status == "draft" if status else raw.get("status") == DRAFT_STATUS


def _date(raw: dict[str, Any], field: str) -> date:
    text = _text(raw, field)
    if not text:
        raise UnreadableField(field, "is missing; set it on the record in FreshBooks")
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise UnreadableField(field, f"{text!r} is not a date (YYYY-MM-DD)")


def _due_date(raw: dict[str, Any], issued: date) -> date:
    """`due_date`; an invoice without one is due `due_offset_days` after it was issued."""
    if _text(raw, "due_date"):
        return _date(raw, "due_date")
    offset = raw.get("due_offset_days")
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        return issued + timedelta(days=offset)
    raise UnreadableField("due_date", "is missing; set the invoice's due date in FreshBooks")


def _currency(raw: dict[str, Any]) -> str:
    amount_field = raw.get("amount")
    code = _text(raw, "currency_code") or (
        _text(amount_field, "code") if isinstance(amount_field, dict) else ""
    )
    if not code:
        raise UnreadableField("currency_code", "is missing")
    return currency_code(code, "currency_code")


def _money(raw: dict[str, Any], field: str, currency: str) -> Decimal:
    """A money object (`{"amount": "12.00", "code": "USD"}`) in `currency`."""
    value = raw.get(field)
    if not isinstance(value, dict) or value.get("amount") in (None, ""):
        raise UnreadableField(f"{field}.amount", "is missing")
    code = (_text(value, "code") or currency).upper()
    if code != currency:
        raise UnreadableField(f"{field}.code", f"{code!r} is not the record's currency {currency}")
    return money(value["amount"], f"{field}.amount", currency)


def _updated(raw: dict[str, Any]) -> datetime | None:
    text = _text(raw, "updated")
    try:
        return parse_freshbooks_time(text) if text else None
    except ValueError:
        return None


def _result(body: Any, resource: str) -> dict[str, Any]:
    """`response.result` of an accounting answer."""
    response = body.get("response") if isinstance(body, dict) else None
    result = response.get("result") if isinstance(response, dict) else None
    if not isinstance(result, dict):
        raise SourceError(f"FreshBooks answered {resource} without a result: try again later")
    return result


def _errors(response: httpx.Response) -> str:
    """FreshBooks' own words about a refused request."""
    errors = (json_or_empty(response).get("response") or {}).get("errors")
    if isinstance(errors, dict):
        errors = [errors]
    texts = [
        str(e.get("message")) for e in errors or [] if isinstance(e, dict) and e.get("message")
    ]
    return "; ".join(texts)[:300] or response.reason_phrase or f"HTTP {response.status_code}"
