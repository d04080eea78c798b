"""Pipedrive as a CRM source: organizations with their tier, tags, owner and billing contact, read
through API v2 with an API token (sent in the `x-api-token` header), and notes added to an
organization.

Organizations and persons come from `/api/v2/organizations` and `/api/v2/persons` (the v1 lists
are out of support since August 2026), paged by an opaque cursor (`additional_data.next_cursor`),
PAGE_SIZE (500, the most v2 gives) at a time. A full fetch reads every organization and every
person in pages, not one request per organization: 620 organizations and their people take a
handful of requests. An incremental one asks for organizations and persons with `update_time` at
or after the cursor (`updated_since`, inclusive: a change in the cursor's second is read again and
merged once); an organization whose person changed is read by id (`ids`, 100 at a time), and the
people of the changed organizations by `org_id` (or all of them, in pages, when many changed).
The next cursor is the latest `update_time` seen.

Tier, tags and the ledger's customer id live in custom organization fields, which v2 gives under
`custom_fields` by a 40-character hash key; the settings name a field by that key (or by its
name, looked up in `/v1/organizationFields`). A single-option field holds an option id, a
multiple-option one a list of them, read back as their labels. Owners' addresses come from
`/v1/users`, read once per fetch; notes are written with `POST /v1/notes` (neither has a v2 form).

The domains are the organization's website, else the company domains its people's addresses are
at (never a free-mail provider's). The billing contact is the first person whose job title names
billing or accounts payable (never an executive's); nobody else is taken.

An organization that cannot be used, or a field of one that cannot (a tier arbot does not know),
becomes a SourceProblem naming it; the rest of the batch still comes through.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.core.errors import UserError
from integrations.base.ledger import CrmAccount, CrmBatch, SourceProblem
from integrations.crm_http import (
    CrmApi,
    CrmClient,
    Person,
    UnreadableValue,
    as_dict,
    as_list,
    as_text,
    bare_domain,
    billing_contact,
    checked_tier,
    email_domain,
    sounds_like_billing,
    split_tags,
)
from integrations.csv_common import normalise_email
from integrations.errors import SourceError
from integrations.source_records import next_cursor, parse_cursor

DEFAULT_API_URL = "https://api.pipedrive.com"
ORGANIZATIONS = "/api/v2/organizations"
PERSONS = "/api/v2/persons"
PAGE_SIZE = 500  # the most a v2 page holds
IDS_PER_REQUEST = 100  # the most ids one v2 list takes
PER_ORG_READS = 10  # more changed organizations than this: read all persons in pages

PIPEDRIVE = CrmApi(
    label="Pipedrive",
    token_setting="PIPEDRIVE_TOKEN",
    token_hint=(
        "copy the API token of a Pipedrive user who sees every organization (Pipedrive: "
        "Settings > Personal preferences > API)"
    ),
    wait_headers=(("x-ratelimit-reset", 1.0),),
)


@dataclass(frozen=True, slots=True)
class OrgField:
    """A custom organization field: its hash key, name, type and option labels by id."""

    key: str
    name: str
    field_type: str
    options: dict[str, str] = field(default_factory=dict)

    def value(self, raw: dict[str, Any]) -> str:
        """The organization's value as a person reads it: option ids become their labels. A
        custom field is under `custom_fields` (v2), a standard one (website) at the top."""
        custom = as_dict(raw.get("custom_fields"))
        value = custom.get(self.key) if self.key in custom else raw.get(self.key)
        if isinstance(value, dict):  # money, dates and the like: {"value": …, …}
            value = value.get("value")
        if isinstance(value, list):
            parts = [as_text(part) for part in value]
        elif value is None:
            return ""
        else:
            parts = [part.strip() for part in str(value).split(",")]
        if self.field_type in ("enum", "set"):
            return ",".join(self.options.get(part, part) for part in parts if part)
        return ",".join(part for part in parts if part)


class PipedriveSource:
    """A CrmSource over one Pipedrive company account."""

    name = "pipedrive"

    def __init__(
        self,
        client: httpx.Client | None,
        token: str,
        api_url: str = DEFAULT_API_URL,
        tier_property: str = "arbot_tier",
        tags_property: str | None = None,
        id_property: str = "arbot_customer_id",
        phone_region: str = "US",
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not token:
            raise UserError(f"PIPEDRIVE_TOKEN is empty: {PIPEDRIVE.token_hint}")
        self.http = CrmClient(PIPEDRIVE, api_url, {"x-api-token": token}, client, sleep)
        self.tier_property = tier_property
        self.tags_property = tags_property
        self.id_property = id_property
        self.phone_region = phone_region
        self.page_size = page_size
        self._owners: dict[str, str | None] | None = None

    # --- CrmSource -----------------------------------------------------------------------------

    def fetch_accounts(self, cursor: str | None) -> CrmBatch:
        since = parse_cursor(cursor, "Pipedrive")
        self._owners = None
        batch = CrmBatch(source=self.name)
        fields = self._fields(batch)
        if since is None:
            organizations = list(self._v2_pages(ORGANIZATIONS, {"sort_by": "id"}))
            persons = list(self._v2_pages(PERSONS, {"sort_by": "id"}))
        else:
            organizations, persons = self._changed(since)
        people: dict[str, list[Person]] = {}
        for raw in persons:
            org_id = _org_id(as_dict(raw).get("org_id"))
            if org_id:
                people.setdefault(org_id, []).append(_person(as_dict(raw)))
        found: dict[str, dict[str, Any]] = {}
        for raw in organizations:
            org_id = as_text(as_dict(raw).get("id"))
            if org_id:
                found.setdefault(org_id, as_dict(raw))
            else:
                batch.problems.append(
                    SourceProblem(
                        "customer", None, "Pipedrive returned an organization without an id"
                    )
                )
        for org_id, raw in found.items():
            self._add_account(batch, org_id, raw, people.get(org_id, []), fields)
        updated = [_updated(raw) for raw in found.values()]
        updated += [_updated(as_dict(raw)) for raw in persons] if since is not None else []
        batch.cursor = next_cursor(cursor, None, updated)
        return batch

    def log_activity(self, crm_id: str, note: str) -> None:
        """A note on the organization."""
        if not crm_id.isdigit():
            raise SourceError(f"{crm_id!r} is not a Pipedrive organization id")
        body = {"content": html.escape(note, quote=False), "org_id": int(crm_id)}
        self.http.json("POST", "/v1/notes", body=body)

    # --- Paging --------------------------------------------------------------------------------

    def _v2_pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every record of a v2 list, page by page along `next_cursor`."""
        cursor: str | None = None
        while True:
            query = {**(params or {}), "limit": str(self.page_size)}
            if cursor:
                query["cursor"] = cursor
            _, answer = self.http.json("GET", path, params=query)
            yield from as_list(as_dict(answer).get("data"))
            cursor = as_text(as_dict(as_dict(answer).get("additional_data")).get("next_cursor"))
            if not cursor:
                return

    def _v1_pages(self, path: str) -> Iterator[Any]:
        start = 0
        while True:
            query = {"start": str(start), "limit": str(self.page_size)}
            _, answer = self.http.json("GET", path, params=query)
            rows = as_list(as_dict(answer).get("data"))  # null when there is nothing
            yield from rows
            paging = as_dict(as_dict(as_dict(answer).get("additional_data")).get("pagination"))
            if not paging.get("more_items_in_collection") or not rows:
                return
            next_start = paging.get("next_start")
            start = next_start if isinstance(next_start, int) else start + len(rows)

    def _changed(self, since: datetime) -> tuple[list[Any], list[Any]]:
        """The organizations changed since `since`, or whose people did, and their people."""
        changed = {"updated_since": _rfc3339(since), "sort_by": "update_time"}
        organizations = list(self._v2_pages(ORGANIZATIONS, changed))
        moved = list(self._v2_pages(PERSONS, changed))
        known = {as_text(as_dict(o).get("id")) for o in organizations}
        missing = sorted({_org_id(as_dict(p).get("org_id")) for p in moved} - known - {""}, key=int)
        for offset in range(0, len(missing), IDS_PER_REQUEST):
            ids = ",".join(missing[offset : offset + IDS_PER_REQUEST])
            organizations += self._v2_pages(ORGANIZATIONS, {"ids": ids})
        org_ids = [as_text(as_dict(o).get("id")) for o in organizations]
        if not org_ids:
            return [], moved
        if len(org_ids) > PER_ORG_READS:
            wanted = set(org_ids)
            everyone = self._v2_pages(PERSONS, {"sort_by": "id"})
            return organizations, [
                p for p in everyone if _org_id(as_dict(p).get("org_id")) in wanted
            ]
        persons: list[Any] = []
        for org_id in org_ids:
            if org_id.isdigit():
                persons += self._v2_pages(PERSONS, {"org_id": org_id, "sort_by": "id"})
        return organizations, persons

    # --- Fields --------------------------------------------------------------------------------

    def _fields(self, batch: CrmBatch) -> dict[str, OrgField | None]:
        """The configured tier, tags and id fields, found by key or by name."""
        wanted = {"tier": self.tier_property, "tags": self.tags_property, "id": self.id_property}
        known = [_org_field(raw) for raw in self._v1_pages("/v1/organizationFields")]
        found: dict[str, OrgField | None] = {}
        for role, name in wanted.items():
            found[role] = _find_field(known, name) if name else None
        settings = {"tier": "ARBOT_CRM_TIER_PROPERTY", "tags": "ARBOT_CRM_TAGS_PROPERTY"}
        for role, setting in settings.items():
            if wanted[role] and found[role] is None:
                batch.problems.append(
                    SourceProblem(
                        "settings",
                        None,
                        f"Pipedrive has no organization field {wanted[role]!r}: set {setting} "
                        "to the field's API key (Pipedrive: Company settings > Data fields)",
                    )
                )
        return found

    # --- Organizations -------------------------------------------------------------------------

    def _add_account(
        self,
        batch: CrmBatch,
        org_id: str,
        raw: dict[str, Any],
        people: list[Person],
        fields: dict[str, OrgField | None],
    ) -> None:
        name = as_text(raw.get("name"))
        if not name:
            batch.problems.append(
                SourceProblem(
                    "customer",
                    org_id,
                    f"Pipedrive organization {org_id}: name is empty; give it a name in Pipedrive",
                )
            )
            return
        problems: list[str] = []
        tier = None
        tier_field, tags_field, id_field = fields["tier"], fields["tags"], fields["id"]
        if tier_field is not None:
            try:
                tier = checked_tier(tier_field.value(raw), tier_field.name)
            except UnreadableValue as exc:
                problems.append(str(exc))
        batch.accounts.append(
            CrmAccount(
                crm_id=org_id,
                name=name,
                domains=self._domains(raw, people, problems),
                external_id=(id_field.value(raw) or None) if id_field else None,
                tier=tier,
                owner_email=self._owner_email(raw.get("owner_id")),
                billing_contact=billing_contact(people, self.phone_region, problems),
                tags=split_tags(tags_field.value(raw)) if tags_field else (),
            )
        )
        who = f"Pipedrive organization {name} (id {org_id})"
        for problem in problems:
            batch.problems.append(SourceProblem("customer", org_id, f"{who}: {problem}"))

    def _domains(
        self, raw: dict[str, Any], people: list[Person], problems: list[str]
    ) -> tuple[str, ...]:
        website = as_text(raw.get("website"))
        if website:
            try:
                return (bare_domain(website),)
            except UnreadableValue as exc:
                problems.append(f"website {exc}")
        domains: list[str] = []
        for person in people:
            try:
                domain = email_domain(normalise_email(person.email or ""))
            except ValueError:
                continue  # reported, if it matters, with the billing contact
            if domain:
                domains.append(domain)
        return tuple(dict.fromkeys(domains))

    def _owner_email(self, owner: object) -> str | None:
        """v2 gives `owner_id` as the user's id; the users' addresses are read once a fetch."""
        if isinstance(owner, dict):  # a v1-shaped answer: the user inline
            return as_text(owner.get("email")).lower() or None
        key = as_text(owner)
        if not key:
            return None
        if self._owners is None:
            _, answer = self.http.json("GET", "/v1/users")
            self._owners = {
                as_text(as_dict(u).get("id")): as_text(as_dict(u).get("email")).lower() or None
                for u in as_list(as_dict(answer).get("data"))
            }
        return self._owners.get(key)


# --- Reading fields ----------------------------------------------------------------------------


def _org_field(raw: Any) -> OrgField:
    raw = as_dict(raw)
    options = {
        as_text(as_dict(o).get("id")): as_text(as_dict(o).get("label"))
        for o in as_list(raw.get("options"))
    }
    return OrgField(
        as_text(raw.get("key")), as_text(raw.get("name")), as_text(raw.get("field_type")), options
    )


def _find_field(known: list[OrgField], wanted: str) -> OrgField | None:
    for candidate in known:
        if candidate.key == wanted:
            return candidate
    for candidate in known:
        if _plain(candidate.name) == _plain(wanted):  # "arbot_tier" finds "Arbot tier"
            return candidate
    return None


def _plain(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _person(raw: dict[str, Any]) -> Person:
    name = as_text(raw.get("name"))
    email = _primary(raw.get("emails", raw.get("email")))  # v2 "emails", v1 "email"
    return Person(
        label=f"person {name or email or '?'} (id {as_text(raw.get('id'))})",
        name=name or None,
        email=email,
        phone=_primary(raw.get("phones", raw.get("phone"))),
        titled=sounds_like_billing(raw.get("job_title")),
    )


def _org_id(value: Any) -> str:
    """A person's organization: an id (v2), or an object holding it (v1)."""
    if isinstance(value, dict):
        value = value.get("value")
    return as_text(value)


def _primary(entries: Any) -> str | None:
    """The primary value of an email or phone list of `{value, primary, label}`, else the first."""
    if isinstance(entries, str):
        return entries.strip() or None
    values = [
        (bool(as_dict(e).get("primary")), as_text(as_dict(e).get("value")))
        for e in as_list(entries)
    ]
    values = [(primary, value) for primary, value in values if value]
    values.sort(key=lambda entry: not entry[0])  # stable: the primary first, then in order
    return values[0][1] if values else None


def _updated(raw: dict[str, Any]) -> datetime | None:
    """`update_time`: RFC 3339 in v2 ("2026-03-12T10:30:00Z"), "YYYY-MM-DD HH:MM:SS" UTC in v1."""
    text = as_text(raw.get("update_time"))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
