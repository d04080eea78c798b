"""A local stand-in for QuickBooks Online: Intuit's token endpoint and the v3 accounting API
(query with paging, change data capture of invoices, invoice read and sparse update,
preferences, company info), answering in QuickBooks' shapes.

It records every request, and can be told to expire the access token once (401), to rate limit
once (429 with Retry-After), or to fail with a server error. The token desk (`TokenDesk`) is shared
with the Xero fake: both providers hand out a new refresh token on every refresh.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http import JsonHandler, LocalServer

REALM = "9130350000000001"
CLIENT_ID = "qb-client-id"
CLIENT_SECRET = "qb-client-secret"
SERVER_TIME = "2026-03-16T07:00:00.000-07:00"  # 14:00 UTC, the tests' NOW

_STATEMENT = re.compile(
    r"SELECT \* FROM (?P<entity>\w+)(?: WHERE (?P<where>.+?))? ORDERBY Id "
    r"STARTPOSITION (?P<start>\d+) MAXRESULTS (?P<max>\d+)"
)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any = None


@dataclass
class TokenDesk:
    """Issues, rotates and checks tokens like an OAuth 2.0 server with rotating refresh tokens."""

    prefix: str
    client_id: str
    client_secret: str
    expires_in: int
    codes: set[str] = field(default_factory=lambda: {"the-code"})
    refresh_token: str = ""
    valid_access: set[str] = field(default_factory=set)
    issued: int = 0

    def __post_init__(self) -> None:
        self.refresh_token = f"{self.prefix}-refresh-0"
        self.valid_access.add(f"{self.prefix}-access-0")

    def answer(self, authorization: str | None, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != f"Basic {basic}":
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if grant == "authorization_code" and form.get("code") in self.codes:
            self.codes.discard(form["code"])
        elif grant == "refresh_token" and form.get("refresh_token") == self.refresh_token:
            pass
        else:
            return 400, {"error": "invalid_grant"}
        self.issued += 1
        access = f"{self.prefix}-access-{self.issued}"
        self.refresh_token = f"{self.prefix}-refresh-{self.issued}"  # the old one stops working
        self.valid_access = {access}
        return 200, {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
        }

    def allows(self, authorization: str | None) -> bool:
        return authorization is not None and authorization.removeprefix("Bearer ") in (
            self.valid_access
        )

    def expire_access(self) -> None:
        self.valid_access = set()


class Handler(JsonHandler):
    """Reads the request once, records it, then lets the fake answer."""

    fake: Any

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length).decode() if length else ""
        content_type = self.headers.get("Content-Type", "")
        body: Any = raw
        if "json" in content_type and raw:
            body = json.loads(raw)
        elif "form" in content_type:
            body = {k: v[0] for k, v in parse_qs(raw).items()}
        record = Recorded(
            method,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        with self.fake.lock:
            self.fake.requests.append(record)
            status, answer, headers = self.fake.route(record)
        # bytes are sent as they are (a PDF), with the Content-Type the fake gives them
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class FakeQuickBooks(LocalServer):
    def __init__(self, realm: str = REALM) -> None:
        self.realm = realm
        self.tokens = TokenDesk("qb", CLIENT_ID, CLIENT_SECRET, expires_in=3600)
        self.customers: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        # What change data capture (`cdc`) reports as deleted, as `deleted(...)` makes them
        self.deleted_invoices: list[dict[str, Any]] = []
        self.home_currency = "USD"
        self.requests: list[Recorded] = []
        self.retry_after: str | None = None  # the next API call gets a 429 with this Retry-After
        self.server_errors = 0  # this many API calls answer 503 first
        self.edits_in_between = 0  # this many updates find the invoice edited since it was read
        # Invoice PDFs by invoice Id (`invoice/{id}/pdf`), served as `pdf_type`; `pdf_status`
        # makes every PDF request answer that status (401: this app may not read PDFs).
        self.pdfs: dict[str, bytes] = {}
        self.pdf_type = "application/pdf"
        self.pdf_status: int | None = None
        self.attachables: list[dict[str, Any]] = []  # notes attached to invoices (`attachable`)
        self.lock = threading.Lock()
        handler = type("QuickBooksHandler", (Handler,), {"fake": self})
        super().__init__(handler)

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/v1/tokens/bearer"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/connect/oauth2"

    def api_calls(self, path_end: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v3/") and r.path.endswith(path_end)]

    def queries(self) -> list[str]:
        return [r.query["query"] for r in self.api_calls("/query")]

    # --- routing -------------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/oauth2/v1/tokens/bearer":
            status, body = self.tokens.answer(request.headers.get("authorization"), request.body)
            return status, body, {}
        if not self.tokens.allows(request.headers.get("authorization")):
            return 401, _auth_fault(), {"WWW-Authenticate": 'Bearer realm="Intuit"'}
        if self.retry_after is not None:
            retry_after, self.retry_after = self.retry_after, None
            return (
                429,
                _fault("ThrottleExceeded", "Too many requests", "003001"),
                {"Retry-After": retry_after},
            )
        if self.server_errors:
            self.server_errors -= 1
            return 503, _fault("Service Unavailable", "try again", "10000"), {}
        prefix = f"/v3/company/{self.realm}"
        if not request.path.startswith(prefix):
            return 403, _fault("AuthorizationFailed", "wrong realm", "003100"), {}
        resource = request.path[len(prefix) :]
        if resource == "/query":
            return 200, self._query(request.query.get("query", "")), {}
        if resource == "/cdc" and request.method == "GET":
            return 200, self._cdc(request.query), {}
        if resource == "/preferences":
            return 200, self._preferences(), {}
        if resource == f"/companyinfo/{self.realm}" and request.method == "GET":
            return 200, self._company_info(), {}
        pdf = re.fullmatch(r"/invoice/([^/]+)/pdf", resource)
        if pdf and request.method == "GET":
            return self._invoice_pdf(pdf[1], request)
        if resource.startswith("/invoice/") and request.method == "GET":
            return self._read_invoice(resource.removeprefix("/invoice/"))
        if resource == "/invoice" and request.method == "POST":
            return self._update_invoice(request.body)
        if resource == "/attachable" and request.method == "POST":
            return self._attach(request.body)
        return 404, _fault("Not found", resource, "610"), {}

    def _query(self, statement: str) -> dict[str, Any]:
        match = _STATEMENT.fullmatch(statement.strip())
        if match is None:
            return _fault("QueryParserError", f"cannot parse {statement!r}", "4000")
        entity = match["entity"]
        rows = {"Customer": self.customers, "Invoice": self.invoices, "Payment": self.payments}[
            entity
        ]
        chosen = [r for r in rows if _matches(r, match["where"] or "")]
        chosen.sort(key=lambda r: int(r["Id"]))
        start, most = int(match["start"]), int(match["max"])
        page = chosen[start - 1 : start - 1 + most]
        if not page:
            return {"QueryResponse": {}, "time": SERVER_TIME}
        return {
            "QueryResponse": {entity: page, "startPosition": start, "maxResults": len(page)},
            "time": SERVER_TIME,
        }

    def _cdc(self, query: dict[str, str]) -> dict[str, Any]:
        """Change data capture: the invoices changed since `changedSince`, as QuickBooks gives
        them (one QueryResponse per entity; a deleted one has only its Id, status and MetaData)."""
        if query.get("entities") != "Invoice":
            return _fault("ValidationFault", f"the fake knows Invoice, not {query!r}", "2010")
        since = datetime.fromisoformat(query["changedSince"])
        rows = [*self.invoices, *self.deleted_invoices]
        changed = [
            r for r in rows if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) >= since
        ]
        changed.sort(key=lambda r: int(r["Id"]))
        found = {"Invoice": changed, "startPosition": 1, "maxResults": len(changed)}
        return {"CDCResponse": [{"QueryResponse": [found if changed else {}]}], "time": SERVER_TIME}

    def _company_info(self) -> dict[str, Any]:
        return {
            "CompanyInfo": {
                "Id": "1",
                "CompanyName": "Brightwater Supply Co.",
                "LegalName": "Brightwater Supply Company LLC",
                "Country": "US",
                "SyncToken": "4",
            },
            "time": SERVER_TIME,
        }

    def _preferences(self) -> dict[str, Any]:
        return {
            "Preferences": {
                "CurrencyPrefs": {
                    "MultiCurrencyEnabled": False,
                    "HomeCurrency": {"value": self.home_currency},
                }
            },
            "time": SERVER_TIME,
        }

    def _invoice_pdf(self, invoice_id: str, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        """The invoice as a PDF (Accept: application/pdf), as QuickBooks answers it."""
        if self.pdf_status == 401:
            return 401, _auth_fault(), {"WWW-Authenticate": 'Bearer realm="Intuit"'}
        if self.pdf_status is not None:
            return self.pdf_status, _fault("Error", "PDF refused", str(self.pdf_status)), {}
        if invoice_id not in self.pdfs:
            return 400, _fault("Object Not Found", f"Invoice {invoice_id}", "610"), {}
        if request.headers.get("accept") != "application/pdf":
            return 400, _fault("Unsupported Accept", "ask for application/pdf", "4000"), {}
        return 200, self.pdfs[invoice_id], {"Content-Type": self.pdf_type}

    def _read_invoice(self, invoice_id: str) -> tuple[int, Any, dict[str, str]]:
        for invoice in self.invoices:
            if invoice["Id"] == invoice_id:
                return 200, {"Invoice": invoice, "time": SERVER_TIME}, {}
        return 400, _fault("Object Not Found", f"Invoice {invoice_id}", "610"), {}

    def _update_invoice(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        for invoice in self.invoices:
            if invoice["Id"] != body.get("Id"):
                continue
            if self.edits_in_between:
                self.edits_in_between -= 1
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)  # someone else's edit
            if body.get("SyncToken") != invoice["SyncToken"]:
                return 400, _fault("Stale Object Error", "You and someone else", "5010"), {}
            if body.get("sparse") is not True:
                return 400, _fault("Required param missing", "not sparse", "2020"), {}
            invoice.update(
                {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse")}
            )
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
            return 200, {"Invoice": invoice, "time": SERVER_TIME}, {}
        return 400, _fault("Object Not Found", "Invoice", "610"), {}

    def _attach(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """A note (no file) attached to the transactions its AttachableRef names, as QuickBooks
        takes one: its Note at most 2000 characters, each named transaction existing."""
        note, refs = body.get("Note"), body.get("AttachableRef")
        if not isinstance(note, str) or len(note) > 2000 or not isinstance(refs, list):
            return 400, _fault("Invalid Note", "a note of at most 2000 characters", "2050"), {}
        ids = {i["Id"] for i in self.invoices}
        for ref in refs:
            entity = ref.get("EntityRef") or {}
            if entity.get("type") != "Invoice" or entity.get("value") not in ids:
                return 400, _fault("Invalid Reference Id", f"Invoice {entity}", "2500"), {}
        attachable = {**body, "Id": str(len(self.attachables) + 1), "SyncToken": "0"}
        self.attachables.append(attachable)
        return 200, {"Attachable": attachable, "time": SERVER_TIME}, {}


def _matches(row: dict[str, Any], where: str) -> bool:
    for clause in filter(None, where.split(" AND ")):
        updated = re.fullmatch(r"MetaData\.LastUpdatedTime >= '(.+)'", clause)
        ids = re.fullmatch(r"Id IN \((.+)\)", clause)
        if updated:
            since = datetime.fromisoformat(updated[1])
            if datetime.fromisoformat(row["MetaData"]["LastUpdatedTime"]) < since:
                return False
        elif ids:
            if row["Id"] not in re.findall(r"'([^']*)'", ids[1]):
                return False
        else:
            raise ValueError(f"the fake does not understand {clause!r}")
    return True


def _fault(message: str, detail: str, code: str) -> dict[str, Any]:
    return {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
            "type": "ValidationFault",
        },
        "time": SERVER_TIME,
    }


def _auth_fault() -> dict[str, Any]:
    return {
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token expired",
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        },
        "time": SERVER_TIME,
    }


# --- Records shaped like QuickBooks' (amounts are JSON numbers on the wire) ---------------------


def meta(updated: str) -> dict[str, str]:
    return {"CreateTime": "2026-01-05T09:00:00-08:00", "LastUpdatedTime": updated}


def customer(
    customer_id: str,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    updated: str = "2026-03-01T09:00:00-08:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": customer_id,
        "SyncToken": "0",
        "DisplayName": name,
        "CompanyName": name,
        "Active": True,
        "Balance": 0,
        "MetaData": meta(updated),
        "domain": "QBO",
        "sparse": False,
    }
    if email:
        record["PrimaryEmailAddr"] = {"Address": email}
    if phone:
        record["PrimaryPhone"] = {"FreeFormNumber": phone}
    return {**record, **extra}


def invoice(
    invoice_id: str,
    customer_id: str,
    number: str | None,
    total: float,
    balance: float,
    due: str = "2026-02-14",
    issued: str = "2026-01-15",
    currency: str = "USD",
    updated: str = "2026-03-01T09:00:00-08:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": invoice_id,
        "SyncToken": "0",
        "TxnDate": issued,
        "DueDate": due,
        "CurrencyRef": {"value": currency, "name": "United States Dollar"},
        "CustomerRef": {"value": customer_id, "name": f"Customer {customer_id}"},
        "TotalAmt": total,
        "Balance": balance,
        "Line": [
            {
                "Id": "1",
                "LineNum": 1,
                "Amount": total,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}},
            },
            {"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        "LinkedTxn": [],
        "MetaData": meta(updated),
        "domain": "QBO",
        "sparse": False,
    }
    if number is not None:
        record["DocNumber"] = number
    return {**record, **extra}


def deleted(record: dict[str, Any], updated: str) -> dict[str, Any]:
    """A record as change data capture reports it once deleted."""
    return {
        "domain": "QBO",
        "status": "Deleted",
        "Id": record["Id"],
        "MetaData": {"LastUpdatedTime": updated},
    }


def payment(
    payment_id: str,
    customer_id: str,
    total: float,
    applied: list[tuple[str, float]],
    received: str = "2026-03-10",
    updated: str = "2026-03-10T12:00:00-08:00",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": payment_id,
        "SyncToken": "0",
        "TxnDate": received,
        "TotalAmt": total,
        "UnappliedAmt": total - sum(amount for _, amount in applied),
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "CustomerRef": {"value": customer_id, "name": f"Customer {customer_id}"},
        "Line": [
            {
                "Amount": amount,
                "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}],
                "LineEx": {"any": []},
            }
            for invoice_id, amount in applied
        ],
        "MetaData": meta(updated),
        "domain": "QBO",
        "sparse": False,
    }
    return {**record, **extra}
