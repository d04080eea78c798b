"""A local stand-in for FreshBooks: the token endpoint (rotating refresh tokens; the app's
credentials by HTTP Basic or in the body), the identity endpoint, and the accounting API's
clients, invoices and payments (lists with `page`/`per_page`, `search[updated_min]` by US/Eastern
day, `search[vis_state]`; reads by id; updates), answering in FreshBooks' shapes.

It records every request, and can be told to expire the access token once (401), to rate limit
once (429 with Retry-After), or to fail with a server error. Its clock, sent as the Date header,
is fixed, or left out. Like FreshBooks, an update that carries `vis_state` changes only that and
silently drops the rest.
"""

from __future__ import annotations

import base64
import math
import re
import threading
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.fake_http import LocalServer
from tests.support.fake_quickbooks import Handler, Recorded, TokenDesk

ACCOUNT = "xZNQ1X"
OTHER_ACCOUNT = "Kq3vB7"
CLIENT_ID = "fb-client-id"
CLIENT_SECRET = "fb-client-secret"
SERVER_TIME = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # the tests' NOW
EASTERN = ZoneInfo("America/New_York")
MAX_PER_PAGE = 100
_ACCOUNTING = "/accounting/account/"
_STATUS_CODES = {"draft": 1, "sent": 2, "viewed": 3, "paid": 4, "partial": 8}


class FreshBooksTokens(TokenDesk):
    """FreshBooks' token endpoint takes the app's credentials either way, and says when."""

    def answer(self, authorization: str | None, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if authorization is None and form.get("client_id"):
            pair = f"{form['client_id']}:{form.get('client_secret', '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        status, body = super().answer(authorization, form)
        if status != 200:
            return status, body
        return status, {
            **body,
            "token_type": "Bearer",
            "scope": "user:profile:read user:clients:read user:clients:write",
            "created_at": int(SERVER_TIME.timestamp()),
        }


class FreshBooksHandler(Handler):
    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(self.fake.server_time or SERVER_TIME, usegmt=True)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword == "Date" and self.fake.server_time is None:
            return
        super().send_header(keyword, value)


class FakeFreshBooks(LocalServer):
    def __init__(self, account: str = ACCOUNT) -> None:
        self.account = account
        self.tokens = FreshBooksTokens("fb", CLIENT_ID, CLIENT_SECRET, expires_in=43200)
        self.clients: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.retry_after: str | None = None  # the next API call gets a 429 with this Retry-After
        self.server_errors = 0  # this many API calls answer 503 first
        self.server_time: datetime | None = SERVER_TIME  # None: answers carry no Date header
        self.refuse_updates: str | None = None  # updates answer 422 with this message
        # Invoice PDFs by invoice id, served as `pdf_type`; `pdf_status` makes every PDF
        # request answer that status (401: this app may not read PDFs).
        self.pdfs: dict[str, bytes] = {}
        self.pdf_type = "application/pdf"
        self.pdf_status: int | None = None
        self.lock = threading.Lock()
        super().__init__(type("FreshBooksHandler", (FreshBooksHandler,), {"fake": self}))

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth/authorize"

    def api_calls(self, resource: str = "") -> list[Recorded]:
        prefix = f"{_ACCOUNTING}{self.account}/{resource}"
        return [r for r in self.requests if r.path.startswith(prefix)]

    def token_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/auth/oauth/token"]

    # --- routing -------------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/auth/oauth/token" and request.method == "POST":
            status, body = self.tokens.answer(request.headers.get("authorization"), request.body)
            return status, body, {}
        if not self.tokens.allows(request.headers.get("authorization")):
            body = {"error": "unauthenticated", "error_description": "The access token expired"}
            return 401, body, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if self.retry_after is not None:
            retry_after, self.retry_after = self.retry_after, None
            return 429, {"message": "Too Many Requests"}, {"Retry-After": retry_after}
        if self.server_errors:
            self.server_errors -= 1
            return 503, {"message": "Service Unavailable"}, {}
        if request.path == "/auth/api/v1/users/me" and request.method == "GET":
            return 200, self._identity(), {}
        prefix = f"{_ACCOUNTING}{self.account}/"
        if not request.path.startswith(prefix):
            return 404, _errors(1012, "account", "Account not found."), {}
        return self._accounting(request.path.removeprefix(prefix), request)

    def _accounting(self, resource: str, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        pdf = re.fullmatch(r"invoices/invoices/([^/]+)/pdf", resource)
        if pdf and request.method == "GET":
            return self._invoice_pdf(pdf[1])
        tables = {
            "users/clients": ("clients", "client", self.clients),
            "invoices/invoices": ("invoices", "invoice", self.invoices),
            "payments/payments": ("payments", "payment", self.payments),
        }
        for path, (plural, single, rows) in tables.items():
            if resource == path and request.method == "GET":
                return 200, _listing(plural, rows, request.query), {}
            if resource.startswith(path + "/"):
                return self._one(single, rows, resource.removeprefix(path + "/"), request)
        return 404, _errors(1012, "resource", f"No such resource {resource}."), {}

    def _invoice_pdf(self, invoice_id: str) -> tuple[int, Any, dict[str, str]]:
        """`invoices/invoices/{id}/pdf`: the invoice as a PDF."""
        if self.pdf_status == 401:
            body = {"error": "unauthenticated", "error_description": "Not allowed"}
            return 401, body, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if self.pdf_status is not None:
            return self.pdf_status, {"message": "refused"}, {}
        if invoice_id not in self.pdfs:
            return 404, _errors(1012, "invoiceid", "Invoice not found."), {}
        return 200, self.pdfs[invoice_id], {"Content-Type": self.pdf_type}

    def _one(
        self, single: str, rows: list[dict[str, Any]], record_id: str, request: Recorded
    ) -> tuple[int, Any, dict[str, str]]:
        row = next((r for r in rows if str(r["id"]) == record_id), None)
        if row is None:
            return 404, _errors(1012, f"{single}id", f"{single.title()} not found."), {}
        if request.method == "PUT" and self.refuse_updates is not None:
            return 422, _errors(2008, single, self.refuse_updates), {}
        if request.method == "PUT":
            fields = request.body.get(single) if isinstance(request.body, dict) else None
            if not isinstance(fields, dict):
                return 422, _errors(2001, single, f"Missing {single}."), {}
            if "vis_state" in fields:  # FreshBooks' update phases: the rest is thrown away
                fields = {"vis_state": fields["vis_state"]}
            row.update(fields)
            row["updated"] = eastern(self.server_time or SERVER_TIME)
        return 200, {"response": {"result": {single: row}}}, {}

    def _identity(self) -> dict[str, Any]:
        def membership(role: str, business_id: int, name: str, account: str) -> dict[str, Any]:
            return {
                "id": business_id + 1000,
                "role": role,
                "unacknowledged_change": False,
                "business": {
                    "id": business_id,
                    "business_uuid": f"uuid-{business_id}",
                    "name": name,
                    "account_id": account,
                    "date_format": "mm/dd/yyyy",
                },
            }

        return {
            "response": {
                "id": 2192788,
                "identity_id": 2192788,
                "first_name": "Dana",
                "last_name": "Ruiz",
                "email": "dana@brightwater.example",
                "business_memberships": [
                    membership("owner", 439000, "Brightwater Supply Co.", self.account),
                    membership("business_employee", 438000, "Harbor Agency", OTHER_ACCOUNT),
                ],
            }
        }


def _listing(plural: str, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    wanted_state = query.get("search[vis_state]")
    if wanted_state is None:  # by default, everything but the deleted
        chosen = [r for r in rows if r.get("vis_state", 0) != 1]
    else:
        chosen = [r for r in rows if r.get("vis_state", 0) == int(wanted_state)]
    since = query.get("search[updated_min]")
    if since is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
            raise ValueError(f"FreshBooks compares updated_min by day: {since!r}")
        chosen = [r for r in chosen if r["updated"][:10] >= since]  # US/Eastern days
    per_page = min(int(query.get("per_page", "15")), MAX_PER_PAGE)
    page = max(int(query.get("page", "1")), 1)
    return {
        "response": {
            "result": {
                plural: chosen[(page - 1) * per_page : page * per_page],
                "page": page,
                "pages": math.ceil(len(chosen) / per_page),
                "per_page": per_page,
                "total": len(chosen),
            }
        }
    }


def _errors(errno: int, field: str, message: str) -> dict[str, Any]:
    return {
        "response": {
            "errors": [{"errno": errno, "field": field, "message": message, "object": field}]
        }
    }


# --- Records shaped like FreshBooks' (money is a string amount with its code) -----------------


def eastern(moment: datetime) -> str:
    """An instant as FreshBooks writes `updated`: US/Eastern, no zone."""
    return f"{moment.astimezone(EASTERN):%Y-%m-%d %H:%M:%S}"


def client(
    client_id: int,
    organization: str,
    email: str = "",
    mob_phone: str = "",
    bus_phone: str = "",
    updated: str = "2026-03-01 12:00:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": client_id,
        "userid": client_id,
        "accounting_systemid": ACCOUNT,
        "organization": organization,
        "fname": "",
        "lname": "",
        "email": email,
        "mob_phone": mob_phone,
        "bus_phone": bus_phone,
        "home_phone": None,
        "fax": "",
        "currency_code": "USD",
        "language": "en",
        "note": None,
        "role": "client",
        "signup_date": "2026-01-05 09:00:00",
        "updated": updated,
        "vis_state": 0,
    }
    return {**record, **extra}


def invoice(
    invoice_id: int,
    client_id: int,
    number: str,
    total: str,
    outstanding: str,
    status: str = "sent",
    create_date: str = "2026-01-15",
    due_date: str | None = "2026-02-14",
    currency: str = "USD",
    updated: str = "2026-03-01 12:00:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": invoice_id,
        "invoiceid": invoice_id,
        "accountid": ACCOUNT,
        "accounting_systemid": ACCOUNT,
        "invoice_number": number,
        "customerid": client_id,
        "organization": f"Client {client_id}",
        "current_organization": f"Client {client_id}",
        "fname": "",
        "lname": "",
        "create_date": create_date,
        "due_offset_days": 30,
        "currency_code": currency,
        "amount": {"amount": total, "code": currency},
        "outstanding": {"amount": outstanding, "code": currency},
        "paid": {"amount": _difference(total, outstanding), "code": currency},
        "v3_status": status,
        "status": _STATUS_CODES.get(status, 2),
        "display_status": status,
        "payment_status": status if status in ("paid", "partial") else "unpaid",
        "notes": "",
        "terms": None,
        "created_at": "2026-01-15 09:00:00",
        "updated": updated,
        "vis_state": 0,
    }
    if due_date is not None:
        record["due_date"] = due_date
        due_in = date.fromisoformat(due_date) - date.fromisoformat(create_date)
        record["due_offset_days"] = due_in.days
    return {**record, **extra}


def payment(
    payment_id: int,
    invoice_id: int,
    client_id: int,
    amount: str,
    received: str = "2026-03-10",
    currency: str = "USD",
    updated: str = "2026-03-10 15:00:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": payment_id,
        "logid": payment_id,
        "accounting_systemid": ACCOUNT,
        "invoiceid": invoice_id,
        "clientid": client_id,
        "amount": {"amount": amount, "code": currency},
        "date": received,
        "type": "Check",
        "note": "",
        "transactionid": None,
        "from_credit": False,
        "creditid": None,
        "overpaymentid": None,
        "gateway": None,
        "send_client_notification": False,
        "updated": updated,
        "vis_state": 0,
    }
    return {**record, **extra}


def _difference(total: str, outstanding: str) -> str:
    try:
        return str(Decimal(total) - Decimal(outstanding))
    except InvalidOperation:
        return "0.00"
