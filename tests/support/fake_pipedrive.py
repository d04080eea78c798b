"""A local stand-in for Pipedrive's API as it is today: organizations and persons through API v2
(`/api/v2/organizations`, `/api/v2/persons` with `org_id`, `ids`, `updated_since`, `sort_by`, cursor
paging: `{success, data, additional_data: {next_cursor}}`, RFC 3339 times, custom fields under
`custom_fields` by their 40-character hash key, option fields as option ids), and through v1 the
organization fields (paged by `start`), the users (and `users/me`) and notes. The deprecated v1 organization and
person lists answer 410.

It records every request, and can be told to refuse the token (401), to rate limit once (429,
with `x-ratelimit-reset` and no Retry-After, or with Retry-After), or to fail with a server error.
"""

from __future__ import annotations

import base64
import threading
from datetime import datetime
from typing import Any

from tests.support.fake_http import LocalServer
from tests.support.fake_quickbooks import Handler, Recorded

TOKEN = "8d0c2f6b4a1e9d7c5b3a19f8e7d6c5b4a3928170"
TIER_KEY = "5f1e0c8b7a6d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
TAGS_KEY = "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
ID_KEY = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
TIER_OPTIONS = {"Strategic": 31, "Standard": 32, "Transactional": 33, "Gold": 34}
TAG_OPTIONS = {"construction": 41, "net-60": 42, "wholesale": 43}


class FakePipedrive(LocalServer):
    def __init__(self) -> None:
        self.organizations: list[dict[str, Any]] = []
        self.persons: list[dict[str, Any]] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.fields: list[dict[str, Any]] = default_fields()
        self.notes: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.token_refused = False  # every call answers 401
        self.rate_limit_reset: str | None = None  # the next call: 429 with x-ratelimit-reset
        self.retry_after: str | None = None  # the next call: 429 with Retry-After
        self.server_errors = 0  # this many calls answer 503 first
        self.lock = threading.Lock()
        super().__init__(type("PipedriveHandler", (Handler,), {"fake": self}))

    def calls(self, path: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    # --- routing -------------------------------------------------------------------------

    def route(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        path, method, query = request.path, request.method, request.query
        if path == "/api/v2/organizations" and method == "GET":
            return self._v2_list(self.organizations, query)
        if path == "/api/v2/persons" and method == "GET":
            return self._v2_list(self.persons, query)
        if path == "/v1/organizationFields" and method == "GET":
            return self._v1_list(self.fields, query)
        if path == "/v1/users" and method == "GET":
            users = [self.users[k] for k in sorted(self.users)]
            return 200, {"success": True, "data": users}, {}
        if path == "/v1/notes" and method == "POST":
            return self._add_note(request.body)
        if path == "/v1/users/me" and method == "GET":  # the token's own user
            me = {
                "id": 8877,
                "name": "Dana Ruiz",
                "email": "dana@brightwater.example",
                "company_id": 5544,
                "company_name": "Brightwater Supply",
                "company_domain": "brightwater",
                "is_admin": 1,
                "active_flag": True,
            }
            return 200, {"success": True, "data": me}, {}
        if path in ("/v1/organizations", "/v1/persons") or path.startswith("/v1/organizations/"):
            return 410, _failure("This endpoint is deprecated: use API v2"), {}
        return 404, _failure("Unknown method ."), {}

    def _refusal(self, request: Recorded) -> tuple[int, Any, dict[str, str]] | None:
        token = request.headers.get("x-api-token") or request.query.get("api_token")
        if self.token_refused or token != TOKEN:
            return 401, {**_failure("unauthorized access"), "errorCode": 401}, {}
        limits = {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0"}
        if self.rate_limit_reset is not None:
            reset, self.rate_limit_reset = self.rate_limit_reset, None
            return 429, _too_many(), {**limits, "x-ratelimit-reset": reset}
        if self.retry_after is not None:
            retry_after, self.retry_after = self.retry_after, None
            return (
                429,
                _too_many(),
                {**limits, "x-ratelimit-reset": "2", "Retry-After": retry_after},
            )
        if self.server_errors:
            self.server_errors -= 1
            return 503, _failure("Service temporarily unavailable"), {}
        return None

    def _v2_list(
        self, records: list[dict[str, Any]], query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """A v2 list: filtered by `ids`, `org_id`, `updated_since` (inclusive, RFC 3339), sorted
        by `sort_by` (id, update_time) and `sort_direction`, paged by an opaque `cursor`."""
        limit = int(query.get("limit", "100"))
        if not 1 <= limit <= 500:
            return 400, _failure("limit must be between 1 and 500"), {}
        chosen = list(records)
        if "ids" in query:
            wanted = {int(i) for i in query["ids"].split(",")}
            if len(wanted) > 100:
                return 400, _failure("ids: at most 100"), {}
            chosen = [r for r in chosen if r["id"] in wanted]
        if "org_id" in query:
            chosen = [r for r in chosen if r.get("org_id") == int(query["org_id"])]
        if "updated_since" in query:
            since = _instant(query["updated_since"])
            chosen = [r for r in chosen if _instant(r["update_time"]) >= since]
        sort_by = query.get("sort_by", "id")
        if sort_by not in ("id", "update_time", "add_time"):
            return 400, _failure(f"sort_by {sort_by!r} is not allowed"), {}
        chosen.sort(key=lambda r: (r[sort_by], r["id"]))
        if query.get("sort_direction", "asc") == "desc":
            chosen.reverse()
        start = int(base64.b64decode(query["cursor"]).decode()) if "cursor" in query else 0
        page = chosen[start : start + limit]
        more = start + limit < len(chosen)
        next_cursor = base64.b64encode(str(start + limit).encode()).decode() if more else None
        body = {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}}
        return 200, body, {}

    def _v1_list(
        self, records: list[dict[str, Any]], query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        start, limit = int(query.get("start", "0")), min(int(query.get("limit", "100")), 500)
        page = records[start : start + limit]
        more = start + limit < len(records)
        pagination: dict[str, Any] = {
            "start": start,
            "limit": limit,
            "more_items_in_collection": more,
        }
        if more:
            pagination["next_start"] = start + limit
        # Pipedrive answers an empty list with `data: null`.
        body = {
            "success": True,
            "data": page or None,
            "additional_data": {"pagination": pagination},
        }
        return 200, body, {}

    def _add_note(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if not body.get("content"):
            return 400, _failure("Content is required"), {}
        org_ids = {o["id"] for o in self.organizations}
        if body.get("org_id") not in org_ids:
            return 400, _failure("Organization not found"), {}
        note = {
            "id": 7000 + len(self.notes),
            "content": body["content"],
            "org_id": body["org_id"],
            "add_time": "2026-03-16 14:00:00",
            "update_time": "2026-03-16 14:00:00",
            "active_flag": True,
        }
        self.notes.append(note)
        return 201, {"success": True, "data": note}, {}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc3339(text: str) -> str:
    """ "2026-03-01 09:00:00" (as tests write it) → "2026-03-01T09:00:00Z", as v2 answers."""
    return text.replace(" ", "T") + "Z" if "T" not in text else text


def _failure(error: str) -> dict[str, Any]:
    return {
        "success": False,
        "error": error,
        "error_info": "Please check developers.pipedrive.com for more information about "
        "Pipedrive API.",
        "data": None,
        "additional_data": None,
    }


def _too_many() -> dict[str, Any]:
    return {**_failure("Request over limit"), "errorCode": 429}


# --- Records shaped like Pipedrive's -----------------------------------------------------------


def default_fields() -> list[dict[str, Any]]:
    """A few of Pipedrive's own organization fields, and the three custom ones arbot reads."""
    return [
        {"id": 4001, "key": "name", "name": "Name", "field_type": "varchar", "edit_flag": False},
        {"id": 4002, "key": "owner_id", "name": "Owner", "field_type": "user", "edit_flag": False},
        {"id": 4003, "key": "website", "name": "Website", "field_type": "varchar"},
        {
            "id": 4050,
            "key": TIER_KEY,
            "name": "arbot tier",
            "field_type": "enum",
            "edit_flag": True,
            "options": [{"id": i, "label": label} for label, i in TIER_OPTIONS.items()],
        },
        {
            "id": 4051,
            "key": TAGS_KEY,
            "name": "AR tags",
            "field_type": "set",
            "edit_flag": True,
            "options": [{"id": i, "label": label} for label, i in TAG_OPTIONS.items()],
        },
        {
            "id": 4052,
            "key": ID_KEY,
            "name": "Ledger customer id",
            "field_type": "varchar",
            "edit_flag": True,
        },
    ]


def user(user_id: int, name: str, email: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "name": name,
        "email": email,
        "has_pic": 0,
        "pic_hash": None,
        "active_flag": True,
        "value": user_id,
    }


def organization(
    org_id: int,
    name: str | None,
    owner: dict[str, Any] | int | None = None,
    update_time: str = "2026-03-01 09:00:00",
    website: str | None = None,
    tier: str | None = None,
    tags: tuple[str, ...] = (),
    customer_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": org_id,
        "name": name,
        "owner_id": owner["id"] if isinstance(owner, dict) else owner,
        "add_time": "2026-01-05T09:00:00Z",
        "update_time": _rfc3339(update_time),
        "visible_to": 3,
        "label_ids": [],
        "address": None,
        "is_deleted": False,
        "website": website,
        "custom_fields": {
            TIER_KEY: TIER_OPTIONS[tier] if tier else None,
            TAGS_KEY: [TAG_OPTIONS[t] for t in tags] or None,
            ID_KEY: customer_id,
        },
    }


def person(
    person_id: int,
    org_id: int,
    name: str,
    emails: list[str] | None = None,
    phones: list[str] | None = None,
    job_title: str | None = None,
    primary_email: int = 0,
    update_time: str = "2026-01-05 09:00:00",
) -> dict[str, Any]:
    return {
        "id": person_id,
        "name": name,
        "owner_id": 11,
        "org_id": org_id,
        "emails": [
            {"label": "work", "value": value, "primary": index == primary_email}
            for index, value in enumerate(emails or [])
        ],
        "phones": [
            {"label": "work", "value": value, "primary": index == 0}
            for index, value in enumerate(phones or [])
        ],
        "job_title": job_title,
        "add_time": "2026-01-05T09:00:00Z",
        "update_time": _rfc3339(update_time),
        "visible_to": 3,
        "label_ids": [],
        "is_deleted": False,
        "custom_fields": {},
    }
