"""A local stand-in for HubSpot's CRM API: companies (list and search, paged by `after`), contacts
(batch read; the list's first page), company-to-contact associations (v4 batch read, with labels),
owners (by id; the list's first page), notes, and a private app token's description (its
scopes), answering in HubSpot's shapes.

It records every request, and can be told to refuse the token (401, as for an expired or revoked
private app token), to rate limit once (429, with Retry-After or with only HubSpot's own
rate-limit headers), or to fail with a server error. A search refuses to page past
`search_window` results, as HubSpot's does past 10,000.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from tests.support.fake_http import LocalServer
from tests.support.fake_quickbooks import Handler, Recorded

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
# What HubSpot returns whether asked or not
COMPANY_DEFAULTS = ("createdate", "domain", "hs_lastmodifieddate", "name")
CONTACT_DEFAULTS = ("createdate", "email", "firstname", "lastmodifieddate", "lastname")


class FakeHubSpot(LocalServer):
    def __init__(self) -> None:
        self.companies: list[dict[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.associations: dict[
            str, list[tuple[str, str | None]]
        ] = {}  # company → (contact, label)
        self.owners: dict[str, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.token_refused: str | None = None  # "expired" or "invalid": every call answers 401
        self.retry_after: str | None = None  # the next call gets a 429 with this Retry-After
        self.rate_limit_window = False  # the next call gets a 429 with only X-HubSpot-RateLimit-*
        self.server_errors = 0  # this many calls answer 502 first
        self.search_window = 10_000
        # The scopes the token was granted; None grants all. A request needing another answers
        # 403 MISSING_SCOPES, as HubSpot does.
        self.granted: set[str] | None = None
        # Whether the token-info endpoint describes the token (False: a key it does not know).
        self.describes_token = True
        self.lock = threading.Lock()
        super().__init__(type("HubSpotHandler", (Handler,), {"fake": self}))

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    # --- routing -------------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/oauth/v2/private-apps/get/access-token-info":
            return self._token_info(request.body)
        refused = self._refusal(request)
        if refused is not None:
            return refused
        path, method = request.path, request.method
        if path == "/crm/v3/objects/companies" and method == "GET":
            return self._list_companies(request.query)
        if path == "/crm/v3/objects/companies/search" and method == "POST":
            return self._search_companies(request.body)
        if path == "/crm/v4/associations/companies/contacts/batch/read" and method == "POST":
            return self._read_associations(request.body)
        if path == "/crm/v3/objects/contacts/batch/read" and method == "POST":
            return self._read_contacts(request.body)
        if path.startswith("/crm/v3/owners/") and method == "GET":
            return self._owner(path.removeprefix("/crm/v3/owners/"))
        if path in ("/crm/v3/owners", "/crm/v3/objects/contacts") and method == "GET":
            return self._first_page(path, request.query)
        if path == "/crm/v3/objects/notes" and method == "POST":
            return self._create_note(request.body)
        return 404, _error("Resource not found", "OBJECT_NOT_FOUND"), {}

    def _token_info(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        """What HubSpot says of a private app's (or service key's) token: the token is in the
        body, and no Authorization is needed."""
        token = body.get("tokenKey") if isinstance(body, dict) else None
        if self.token_refused or token != TOKEN or not self.describes_token:
            return 400, _error("The token is not a valid private app token", "VALIDATION_ERROR"), {}
        granted = (
            sorted(self.granted)
            if self.granted is not None
            else sorted({scope for _, _, scope in _SCOPES})
        )
        return 200, {"userId": 7001, "hubId": 4455, "appId": 3301, "scopes": granted}, {}

    def _refusal(self, request: Recorded) -> tuple[int, Any, dict[str, str]] | None:
        authorization = request.headers.get("authorization")
        if self.token_refused or authorization != f"Bearer {TOKEN}":
            if self.token_refused == "expired":
                message = "The OAuth token used to make this call expired 2 hour(s) ago."
                return 401, _error(message, "EXPIRED_AUTHENTICATION"), {}
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at https://developers.hubspot.com"
            )
            return 401, _error(message, "INVALID_AUTHENTICATION"), {}
        limits = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        if self.retry_after is not None:
            retry_after, self.retry_after = self.retry_after, None
            return 429, _rate_limited(), {**limits, "Retry-After": retry_after}
        if self.rate_limit_window:
            self.rate_limit_window = False
            return 429, _rate_limited(), limits
        if self.server_errors:
            self.server_errors -= 1
            return 502, _error("Bad gateway", "INTERNAL_ERROR"), {}
        needed = _required_scope(request.method, request.path)
        if self.granted is not None and needed and needed not in self.granted:
            return 403, _missing_scope(needed), {}
        return None

    # --- companies -----------------------------------------------------------------------

    def _list_companies(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        wanted = [p for p in query.get("properties", "").split(",") if p]
        limit = min(int(query.get("limit", "10")), 100)
        chosen = sorted(self.companies, key=lambda c: int(c["id"]))
        return 200, _page(chosen, query.get("after"), limit, wanted), {}

    def _search_companies(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        limit = min(int(body.get("limit", 10)), 200)
        after = body.get("after")
        if after is not None and int(after) >= self.search_window:
            message = f"Cannot page beyond {self.search_window} results"
            return 400, _error(message, "VALIDATION_ERROR"), {}
        chosen = [c for c in self.companies if _passes(c, body.get("filterGroups") or [])]
        chosen.sort(key=lambda c: int(c["id"]))
        for sort in reversed(body.get("sorts") or []):
            name: str = sort["propertyName"]
            descending = sort.get("direction") == "DESCENDING"
            chosen.sort(key=partial(_sort_key, name=name), reverse=descending)
        answer = _page(chosen, after, limit, body.get("properties") or [])
        return 200, {"total": len(chosen), **answer}, {}

    # --- contacts, owners, notes ------------------------------------------------------------

    def _read_associations(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        results, errors = [], []
        for entry in body["inputs"]:
            linked = self.associations.get(entry["id"], [])
            if not linked:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"No contacts is associated with company {entry['id']}.",
                        "context": {"fromObjectId": [entry["id"]]},
                    }
                )
                continue
            results.append(
                {
                    "from": {"id": entry["id"]},
                    "to": [
                        {
                            "toObjectId": int(contact_id),
                            "associationTypes": _association_types(label),
                        }
                        for contact_id, label in linked
                    ],
                }
            )
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, **_times()}
        if errors:
            answer.update(errors=errors, numErrors=len(errors))
        return (207 if errors else 200), answer, {}

    def _read_contacts(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        wanted = body.get("properties") or []
        results = [
            _with_properties(self.contacts[entry["id"]], wanted, CONTACT_DEFAULTS)
            for entry in body["inputs"]
            if entry["id"] in self.contacts
        ]
        return 200, {"status": "COMPLETE", "results": results, **_times()}, {}

    def _first_page(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The first page of the owners or contacts list (no `after`: `arbot doctor` reads one)."""
        limit = int(query.get("limit", "100"))
        if path == "/crm/v3/owners":
            rows = [self.owners[k] for k in sorted(self.owners)]
        else:
            rows = [
                {"id": k, "properties": {"email": v.get("email")}, "archived": False}
                for k, v in sorted(self.contacts.items())
            ]
        return 200, {"results": rows[:limit]}, {}

    def _owner(self, owner_id: str) -> tuple[int, Any, dict[str, str]]:
        if owner_id not in self.owners:
            return 404, _error(f"No owner with id {owner_id}", "OBJECT_NOT_FOUND"), {}
        return 200, self.owners[owner_id], {}

    def _create_note(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        properties = body.get("properties") or {}
        if not properties.get("hs_timestamp"):
            return 400, _error("Property hs_timestamp is required", "VALIDATION_ERROR"), {}
        for association in body.get("associations") or []:
            company_id = association["to"]["id"]
            if all(c["id"] != company_id for c in self.companies):
                message = f"No company with id {company_id} to associate the note with"
                return 400, _error(message, "VALIDATION_ERROR"), {}
        note = {
            "id": str(90000 + len(self.notes)),
            "properties": properties,
            "createdAt": "2026-03-16T14:00:00.000Z",
            "updatedAt": "2026-03-16T14:00:00.000Z",
            "archived": False,
        }
        self.notes.append({**note, "associations": body.get("associations") or []})
        return 201, note, {}


# --- Answers shaped like HubSpot's --------------------------------------------------------------

# The scope each endpoint needs, from HubSpot's scope reference (notes need the contacts scope).
_SCOPES = (
    ("POST", "/crm/v3/objects/notes", "crm.objects.contacts.write"),
    ("GET", "/crm/v3/objects/companies", "crm.objects.companies.read"),
    ("POST", "/crm/v3/objects/companies/search", "crm.objects.companies.read"),
    ("POST", "/crm/v4/associations/companies/contacts", "crm.objects.contacts.read"),
    ("POST", "/crm/v3/objects/contacts/batch/read", "crm.objects.contacts.read"),
    ("GET", "/crm/v3/objects/contacts", "crm.objects.contacts.read"),
    ("GET", "/crm/v3/owners", "crm.objects.owners.read"),
)


def _required_scope(method: str, path: str) -> str | None:
    for wanted_method, prefix, scope in _SCOPES:
        if method == wanted_method and path.startswith(prefix):
            return scope
    return None


def _missing_scope(scope: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        "correlationId": "7f1e2d3c-0000-4000-8000-000000000403",
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        "category": "MISSING_SCOPES",
    }


def _error(message: str, category: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "7f1e2d3c-0000-4000-8000-000000000001",
        "category": category,
    }


def _rate_limited() -> dict[str, Any]:
    return {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "7f1e2d3c-0000-4000-8000-000000000002",
        "policyName": "TEN_SECONDLY_ROLLING",
    }


def _times() -> dict[str, str]:
    return {"startedAt": "2026-03-16T14:00:00.000Z", "completedAt": "2026-03-16T14:00:00.050Z"}


def _association_types(label: str | None) -> list[dict[str, Any]]:
    types: list[dict[str, Any]] = [{"category": "HUBSPOT_DEFINED", "typeId": 280, "label": None}]
    if label:
        types.append({"category": "USER_DEFINED", "typeId": 9, "label": label})
    return types


def _page(
    records: list[dict[str, Any]], after: str | None, limit: int, wanted: list[str]
) -> dict[str, Any]:
    start = int(after or 0)
    chosen = records[start : start + limit]
    answer: dict[str, Any] = {"results": [_with_properties(r, wanted) for r in chosen]}
    if start + limit < len(records):
        answer["paging"] = {
            "next": {"after": str(start + limit), "link": f"?after={start + limit}"}
        }
    return answer


def _with_properties(
    record: dict[str, Any], wanted: list[str], defaults: tuple[str, ...] = COMPANY_DEFAULTS
) -> dict[str, Any]:
    """The record with the properties asked for (null when it has none) and the defaults."""
    properties = {name: record["properties"].get(name) for name in {*wanted, *defaults}}
    properties["hs_object_id"] = record["id"]
    return {**record, "properties": properties}


def _millis(text: str) -> int:
    instant = datetime.fromisoformat(text)
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _passes(company: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
    if not groups:
        return True
    return any(all(_filter(company, f) for f in group["filters"]) for group in groups)


def _filter(company: dict[str, Any], condition: dict[str, Any]) -> bool:
    if condition["propertyName"] != "hs_lastmodifieddate":
        raise ValueError(f"the fake does not filter on {condition['propertyName']!r}")
    modified = _millis(company["properties"]["hs_lastmodifieddate"])
    value = int(condition["value"])
    compare = {"GT": modified > value, "GTE": modified >= value, "LT": modified < value}
    return compare[condition["operator"]]


def _sort_key(company: dict[str, Any], name: str) -> Any:
    if name == "hs_lastmodifieddate":
        return _millis(company["properties"][name])
    return company["properties"].get(name) or ""


# --- Records shaped like HubSpot's (every property value is a string) ---------------------------


def company(
    company_id: str,
    name: str | None,
    domain: str | None = None,
    modified: str = "2026-03-01T17:00:00.000Z",
    owner: str | None = None,
    **properties: str | None,
) -> dict[str, Any]:
    return {
        "id": company_id,
        "properties": {
            "name": name,
            "domain": domain,
            "hubspot_owner_id": owner,
            "createdate": "2026-01-05T17:00:00.000Z",
            "hs_lastmodifieddate": modified,
            **properties,
        },
        "createdAt": "2026-01-05T17:00:00.000Z",
        "updatedAt": modified,
        "archived": False,
    }


def contact(
    contact_id: str,
    first: str,
    last: str,
    email: str | None,
    phone: str | None = None,
    jobtitle: str | None = None,
) -> dict[str, Any]:
    return {
        "id": contact_id,
        "properties": {
            "firstname": first,
            "lastname": last,
            "email": email,
            "phone": phone,
            "mobilephone": None,
            "jobtitle": jobtitle,
            "createdate": "2026-01-05T17:00:00.000Z",
            "lastmodifieddate": "2026-01-05T17:00:00.000Z",
        },
        "createdAt": "2026-01-05T17:00:00.000Z",
        "updatedAt": "2026-01-05T17:00:00.000Z",
        "archived": False,
    }


def owner(owner_id: str, email: str, first: str, last: str) -> dict[str, Any]:
    return {
        "id": owner_id,
        "email": email,
        "type": "PERSON",
        "firstName": first,
        "lastName": last,
        "userId": int(owner_id) + 1000,
        "createdAt": "2025-06-01T12:00:00.000Z",
        "updatedAt": "2025-06-01T12:00:00.000Z",
        "archived": False,
    }
