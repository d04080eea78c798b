"""FreshBooks as a ledger source: clients, invoices and payments through the accounting API, and
reminder notes written back to the client's internal note. How each record is read into ours is in
integrations.freshbooks_records.

A FreshBooks login may belong to several businesses; `freshbooks_accounts` lists them (the
identity endpoint, `/auth/api/v1/users/me`) so the connect step can keep the chosen account id
as the tenant. Every accounting path names that account id.

Lists are read `page=1, 2, ...` (100 a page, FreshBooks' most) up to the page FreshBooks says is
the last (`pages`). Incremental sync sends `search[updated_min]`, which FreshBooks compares by day
only: the cursor becomes its US/Eastern date (FreshBooks keeps every time in US/Eastern), so each
sync reads that whole day again (the upsert is idempotent) rather than miss part of it. The next
cursor is FreshBooks' clock at the first answer (its Date header) less a few minutes; without one,
the latest `updated` seen.

Lists leave deleted records out, so deleted invoices are asked for on their own
(`search[vis_state]=1`) and come back as status "void". Drafts are not owed yet and are left out.
A deleted payment is left out too: the invoice's `outstanding`, synced with it, already says the
money is owed again.

FreshBooks prints an invoice's `notes` on the invoice the client sees, so a reminder note never
goes there: it is appended to the client's internal note (seen by the business only), naming the
invoice. FreshBooks has no version token to guard that read-then-write, so an edit a person makes
to the same note in the moment between the two is overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from integrations.base.ledger import LedgerBatch
from integrations.errors import SourceError, SourceUnavailable, json_or_empty
from integrations.freshbooks_records import (
    DELETED,
    EASTERN,
    add_customer,
    add_invoice,
    add_payment,
    client_label,
    client_name,
    field_id,
    field_text,
    invoice_number,
    is_draft,
    updated_at,
)
from integrations.invoice_pdfs import source_pdf
from integrations.oauth_client import OAuthClient
from integrations.source_records import add_missing_customers, next_cursor, parse_cursor
from integrations.tls import http_client

DEFAULT_API_URL = "https://api.freshbooks.com"
PAGE_SIZE = 100  # FreshBooks silently caps per_page at 100


@dataclass(frozen=True, slots=True)
class FreshBooksAccount:
    account_id: str  # what the accounting API's paths name
    name: str  # the business's name
    role: str  # the login's role there: "owner", "business_employee", ...


def freshbooks_accounts(
    access_token: str, api_url: str = DEFAULT_API_URL, http: httpx.Client | None = None
) -> list[FreshBooksAccount]:
    """The businesses the new connection's login belongs to, to pick the account."""
    client = http or http_client(timeout=30)
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
                    field_text(business, "name"),
                    field_text(membership, "role"),
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
            add_customer(batch, raw, self.phone_region)
        owed = [raw for raw in raw_invoices if not is_draft(raw)]
        self._add_missing_customers(batch, owed, raw_payments)
        for raw in owed:
            add_invoice(batch, raw)
        numbers = {field_id(raw, "id"): invoice_number(raw) for raw in raw_invoices}
        self._look_up_numbers(numbers, raw_payments)
        for raw in raw_payments:
            add_payment(batch, raw, numbers)
        rows = [*raw_clients, *raw_invoices, *raw_payments]
        batch.cursor = next_cursor(cursor, self._server_time, (updated_at(row) for row in rows))
        return batch

    # --- PdfSource ---------------------------------------------------------------------------

    def invoice_pdf(self, external_id: str, number: str, max_bytes: int) -> bytes:
        """The invoice as FreshBooks renders it (`GET invoices/invoices/{id}/pdf`)."""
        return source_pdf(
            self.client, number, f"{self.base}/invoices/invoices/{external_id}/pdf", max_bytes
        )

    # --- InvoiceNotes -------------------------------------------------------------------------

    def add_note(self, invoice_external_id: str, note: str) -> None:
        """Append `note`, naming the invoice, to its client's internal note (never the invoice's
        own notes: the client reads those)."""
        invoice = self._read("invoices/invoices", invoice_external_id, "invoice")
        client_id = field_id(invoice, "customerid")
        if not client_id:
            raise SourceError(
                f"FreshBooks invoice {invoice_number(invoice)} names no client, "
                "so its note was not added"
            )
        client = self._read("users/clients", client_id, "client")
        existing = str(client.get("note") or "").rstrip()
        line = f"Invoice {invoice_number(invoice)}: {note}"
        response = self.client.request(
            "PUT",
            f"{self.base}/users/clients/{client_id}",
            json_body={"client": {"note": f"{existing}\n{line}" if existing else line}},
            allow=(400, 404, 422),
        )
        if response.status_code >= 400:
            raise SourceError(
                f"FreshBooks refused the note on client {client_label(client)} "
                f"(invoice {invoice_number(invoice)}): {_errors(response)}"
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

    # --- Records the lists did not bring -------------------------------------------------------

    def _add_missing_customers(
        self, batch: LedgerBatch, invoices: list[dict[str, Any]], payments: list[dict[str, Any]]
    ) -> None:
        """Clients of invoices and payments that did not come with the clients (an incremental
        sync, or a deleted client): fetch them, or at least name them from the invoice."""

        def look_up(client_ids: list[str]) -> None:
            for client_id in client_ids:
                raw = self._look_up("users/clients", client_id, "client")
                if raw is not None:
                    add_customer(batch, raw, self.phone_region)

        named = {field_id(raw, "customerid"): client_name(raw) for raw in invoices}
        for raw in payments:
            named.setdefault(
                field_id(raw, "clientid"), f"FreshBooks client {field_id(raw, 'clientid')}"
            )
        add_missing_customers(batch, named, look_up)

    def _look_up_numbers(self, numbers: dict[str, str], payments: list[dict[str, Any]]) -> None:
        wanted = sorted({field_id(raw, "invoiceid") for raw in payments} - numbers.keys() - {""})
        for invoice_id in wanted:
            raw = self._look_up("invoices/invoices", invoice_id, "invoice")
            if raw is not None:
                numbers[invoice_id] = invoice_number(raw)


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
