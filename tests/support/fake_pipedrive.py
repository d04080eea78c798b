"""A local stand-in for Pipedrive's v1 API: organizations (paged by `start`, sorted), organization
fields, an organization's persons, users and notes, answering in Pipedrive's shapes
(`{success, data, additional_data: {pagination}}`, custom fields under 40-character hash keys).

It records every request, and can be told to refuse the token (401), to rate limit once (429,
with `x-ratelimit-reset` and no Retry-After, or with Retry-After), or to fail with a server error.
"""

from __future__ import annotations

import threading
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
        path, method = request.path, request.method
        parts = path.strip("/").split("/")
        if path == "/v1/organizations" and method == "GET":
            return self._list(self._organizations(request.query.get("sort")), request.query)
        if path == "/v1/organizationFields" and method == "GET":
            return self._list(self.fields, request.query)
        if parts[:2] == ["v1", "organizations"] and parts[3:] == ["persons"] and method == "GET":
            persons = [p for p in self.persons if p["org_id"]["value"] == int(parts[2])]
            return self._list(persons, request.query)
        if parts[:2] == ["v1", "users"] and len(parts) == 3 and method == "GET":
            return self._user(int(parts[2]))
        if path == "/v1/notes" and method == "POST":
            return self._add_note(request.body)
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

    def _organizations(self, sort: str | None) -> list[dict[str, Any]]:
        ordered = sorted(self.organizations, key=lambda o: o["id"])
        if sort == "update_time DESC":
            ordered.sort(key=lambda o: o["update_time"], reverse=True)
        elif sort not in (None, "id ASC"):
            raise ValueError(f"the fake does not sort by {sort!r}")
        for org in ordered:  # Pipedrive counts an organization's people itself
            org["people_count"] = sum(p["org_id"]["value"] == org["id"] for p in self.persons)
        return ordered

    def _list(
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

    def _user(self, user_id: int) -> tuple[int, Any, dict[str, str]]:
        if user_id not in self.users:
            return 404, _failure("User not found"), {}
        return 200, {"success": True, "data": self.users[user_id]}, {}

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
        "company_id": 9123456,
        "owner_id": owner,
        "name": name,
        "open_deals_count": 0,
        "people_count": 0,
        "add_time": "2026-01-05 09:00:00",
        "update_time": update_time,
        "visible_to": "3",
        "label": None,
        "address": None,
        "active_flag": True,
        "website": website,
        TIER_KEY: str(TIER_OPTIONS[tier]) if tier else None,
        TAGS_KEY: ",".join(str(TAG_OPTIONS[t]) for t in tags) or None,
        ID_KEY: customer_id,
    }


def person(
    person_id: int,
    org_id: int,
    name: str,
    emails: list[str] | None = None,
    phones: list[str] | None = None,
    job_title: str | None = None,
    primary_email: int = 0,
) -> dict[str, Any]:
    return {
        "id": person_id,
        "name": name,
        "org_id": {"name": f"Organization {org_id}", "value": org_id, "people_count": 1},
        "email": [
            {"label": "work", "value": value, "primary": index == primary_email}
            for index, value in enumerate(emails or [])
        ]
        or [{"value": "", "primary": True}],
        "phone": [
            {"label": "work", "value": value, "primary": index == 0}
            for index, value in enumerate(phones or [])
        ]
        or [{"value": "", "primary": True}],
        "job_title": job_title,
        "add_time": "2026-01-05 09:00:00",
        "update_time": "2026-01-05 09:00:00",
        "active_flag": True,
    }
