"""A local stand-in for Xero: the identity token endpoint, `GET /connections`, and the Accounting
API's Invoices, Contacts and Payments lists (100 a page, `where`, `If-Modified-Since`, `IDs`) plus
invoice history notes, answering in Xero's shapes with `/Date(...)/` dates.

It records every request, and can be told to expire the access token once (401), to rate limit
once (429 with Retry-After), or to fail with a server error.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.support.fake_http import LocalServer
from tests.support.fake_quickbooks import Handler, Recorded, TokenDesk

TENANT = "c3a1f8a2-5b6d-4c1e-9f00-000000000001"
CLIENT_ID = "xero-client-id"
CLIENT_SECRET = "xero-client-secret"
SERVER_TIME = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # the tests' NOW
PAGE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_API = "/api.xro/2.0/"


def ms_date(moment: date | datetime, offset: str | None = "+0000") -> str:
    """Xero's `/Date(milliseconds+zone)/`; a plain date is midnight UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    millis = (moment - _EPOCH) // timedelta(milliseconds=1)
    return f"/Date({millis}{offset or ''})/"


def _instant(text: str) -> datetime:
    millis = int(re.fullmatch(r"/Date\((-?\d+)([+-]\d{4})?\)/", text)[1])  # type: ignore[index]
    return _EPOCH + timedelta(milliseconds=millis)


class FakeXero(LocalServer):
    def __init__(self, tenant: str = TENANT) -> None:
        self.tenant = tenant
        self.tokens = TokenDesk("xero", CLIENT_ID, CLIENT_SECRET, expires_in=1800)
        self.contacts: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.retry_after: str | None = None  # the next API call gets a 429 with this Retry-After
        self.server_errors = 0  # this many API calls answer 500 first
        # Invoice PDFs by invoice id, served as `pdf_type`; `pdf_status` makes every PDF
        # request answer that status (401: this app may not read PDFs).
        self.pdfs: dict[str, bytes] = {}
        self.pdf_type = "application/pdf"
        self.pdf_status: int | None = None
        self.lock = threading.Lock()
        super().__init__(type("XeroHandler", (Handler,), {"fake": self}))

    @property
    def token_url(self) -> str:
        return f"{self.url}/connect/token"

    def api_calls(self, entity: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(_API + entity)]

    # --- routing -------------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/connect/token":
            status, body = self.tokens.answer(request.headers.get("authorization"), request.body)
            return status, body, {}
        if not self.tokens.allows(request.headers.get("authorization")):
            detail = "TokenExpired: token expired at 03/16/2026 13:30:00"
            problem = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": detail}
            return 401, problem, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if self.retry_after is not None:
            retry_after, self.retry_after = self.retry_after, None
            headers = {"Retry-After": retry_after, "X-Rate-Limit-Problem": "minute"}
            return 429, {"Title": "Too Many Requests", "Status": 429}, headers
        if self.server_errors:
            self.server_errors -= 1
            return 500, {"Title": "An error occurred", "Status": 500}, {}
        if request.path == "/connections":
            return 200, self._connections(), {}
        if request.headers.get("xero-tenant-id") != self.tenant:
            problem = {"Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}
            return 403, problem, {}
        history = re.fullmatch(_API + r"Invoices/([^/]+)/History", request.path)
        if history and request.method == "PUT":
            return self._add_history(history[1], request.body)
        one = re.fullmatch(_API + r"Invoices/([^/]+)", request.path)
        if one and request.method == "GET" and request.headers.get("accept") == "application/pdf":
            return self._invoice_pdf(one[1])
        entity = request.path.removeprefix(_API)
        lists = {"Invoices": self.invoices, "Contacts": self.contacts, "Payments": self.payments}
        if request.method == "GET" and entity in lists:
            return 200, self._list(entity, lists[entity], request), {}
        return 404, {"Title": "Not Found", "Status": 404}, {}

    def _invoice_pdf(self, invoice_id: str) -> tuple[int, Any, dict[str, str]]:
        """`GET Invoices/{InvoiceID}` asked for application/pdf: the invoice as a PDF."""
        if self.pdf_status == 401:
            problem = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthFailed"}
            return 401, problem, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if self.pdf_status is not None:
            return self.pdf_status, {"Title": "Error", "Status": self.pdf_status}, {}
        if invoice_id not in self.pdfs:
            return 404, {"Title": "Not Found", "Status": 404}, {}
        return 200, self.pdfs[invoice_id], {"Content-Type": self.pdf_type}

    def _connections(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "0d1c2b3a-0000-4000-8000-000000000000",
                "authEventId": "9e8d7c6b-0000-4000-8000-000000000000",
                "tenantId": self.tenant,
                "tenantType": "ORGANISATION",
                "tenantName": "Brightwater Supply Co.",
                "createdDateUtc": "2026-03-16T13:55:00.0000000",
                "updatedDateUtc": "2026-03-16T13:55:00.0000000",
            }
        ]

    def _list(self, entity: str, rows: list[dict[str, Any]], request: Recorded) -> dict[str, Any]:
        chosen = [r for r in rows if _where(r, request.query.get("where", ""))]
        if "IDs" in request.query:
            wanted = request.query["IDs"].split(",")
            chosen = [r for r in rows if r[entity[:-1] + "ID"] in wanted]
        since = request.headers.get("if-modified-since")
        if since:
            moment = datetime.fromisoformat(since).replace(tzinfo=UTC)
            chosen = [r for r in chosen if _instant(r["UpdatedDateUTC"]) >= moment]
        if "page" in request.query:
            page = int(request.query["page"])
            chosen = chosen[(page - 1) * PAGE : page * PAGE]
        return {
            "Id": "2b8a5a3e-0000-4000-8000-000000000000",
            "Status": "OK",
            "ProviderName": "arbot",
            "DateTimeUTC": ms_date(SERVER_TIME, None),
            entity: chosen,
        }

    def _add_history(self, invoice_id: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not any(i["InvoiceID"] == invoice_id for i in self.invoices):
            return 404, {"Title": "Not Found", "Status": 404}, {}
        records = body.get("HistoryRecords") if isinstance(body, dict) else None
        if not records or any(len(r.get("Details", "")) > 250 for r in records):
            return 400, {"Title": "Validation error", "Status": 400}, {}
        self.history.setdefault(invoice_id, []).extend(records)
        return 200, {"HistoryRecords": records}, {}


def _where(row: dict[str, Any], where: str) -> bool:
    for name, value in re.findall(r'(\w+)==("[^"]*"|true|false)', where):
        expected: Any = value.strip('"') if value.startswith('"') else value == "true"
        if row.get(name) != expected:
            return False
    return True


# --- Records shaped like Xero's (amounts are JSON numbers on the wire) -------------------------


def contact(
    contact_id: str,
    name: str,
    email: str | None = None,
    phones: list[dict[str, str]] | None = None,
    updated: datetime = datetime(2026, 3, 1, 17, 0, tzinfo=UTC),
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Name": name,
        "FirstName": "",
        "LastName": "",
        "EmailAddress": email or "",
        "Phones": phones or [],
        "Addresses": [],
        "IsSupplier": False,
        "IsCustomer": True,
        "UpdatedDateUTC": ms_date(updated),
        "ContactPersons": [],
        "HasAttachments": False,
    }
    return {**record, **extra}


def phone(kind: str, number: str, area: str = "", country: str = "") -> dict[str, str]:
    return {
        "PhoneType": kind,
        "PhoneNumber": number,
        "PhoneAreaCode": area,
        "PhoneCountryCode": country,
    }


def invoice(
    invoice_id: str,
    contact_id: str,
    number: str,
    total: float,
    amount_due: float,
    status: str = "AUTHORISED",
    issued: date = date(2026, 1, 15),
    due: date | None = date(2026, 2, 14),
    currency: str = "USD",
    updated: datetime = datetime(2026, 3, 1, 17, 0, tzinfo=UTC),
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Type": "ACCREC",
        "InvoiceID": invoice_id,
        "InvoiceNumber": number,
        "Reference": "",
        "Payments": [],
        "CreditNotes": [],
        "AmountDue": amount_due,
        "AmountPaid": round(total - amount_due, 2),
        "AmountCredited": 0.0,
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": {"ContactID": contact_id, "Name": f"Contact {contact_id}"},
        "DateString": issued.isoformat() + "T00:00:00",
        "Date": ms_date(issued),
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "SubTotal": total,
        "TotalTax": 0.0,
        "Total": total,
        "UpdatedDateUTC": ms_date(updated),
        "CurrencyCode": currency,
    }
    if due is not None:
        record["DueDateString"] = due.isoformat() + "T00:00:00"
        record["DueDate"] = ms_date(due)
    return {**record, **extra}


def payment(
    payment_id: str,
    invoice_id: str,
    number: str,
    contact_id: str,
    amount: float,
    received: date = date(2026, 3, 10),
    currency: str = "USD",
    updated: datetime = datetime(2026, 3, 10, 20, 0, tzinfo=UTC),
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "PaymentID": payment_id,
        "Date": ms_date(received),
        "BankAmount": amount,
        "Amount": amount,
        "Reference": f"Transfer {payment_id}",
        "CurrencyRate": 1.0,
        "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED",
        "UpdatedDateUTC": ms_date(updated),
        "HasAccount": False,
        "IsReconciled": True,
        "Account": {"AccountID": "13918178-849a-4823-9a31-57b7eac713d7", "Code": "090"},
        "Invoice": {
            "Type": "ACCREC",
            "InvoiceID": invoice_id,
            "InvoiceNumber": number,
            "Contact": {"ContactID": contact_id, "Name": f"Contact {contact_id}"},
            "CurrencyCode": currency,
        },
    }
    return {**record, **extra}
