"""Pipedrive as a CRM source: organizations with their tier, tags, owner and billing contact, read
through the v1 API with an API token, and notes added to an organization.

Tier, tags and the ledger's customer id live in custom organization fields, which Pipedrive keys
by a 40-character hash; the settings name a field by that key (or by its name, which is looked up
in `/v1/organizationFields`). A single- or multiple-option field holds option ids, read back as
their labels.

A full fetch pages through every organization by id. An incremental one pages through them newest
change first (`sort=update_time DESC`) and stops at the first changed before the cursor; one
changed while we page moves to the front, so nothing is skipped (it may be seen twice, and is kept
once). `update_time` is UTC, to the second: the cursor is the latest seen, and a change in that
same second is fetched again next time rather than missed (the merge is idempotent).

The domains are the organization's website, else the company domains its people's addresses are
at (never a free-mail provider's). The billing contact is the first person whose job title says
billing, else the first with an email address.

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
PAGE_SIZE = 100

PIPEDRIVE = CrmApi(
    label="Pipedrive",
    token_setting="PIPEDRIVE_TOKEN",
    token_hint="copy your API token from Pipedrive: Settings > Personal preferences > API",
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
        """The organization's value as a person reads it: option ids become their labels."""
        value = raw.get(self.key)
        if value is None or isinstance(value, dict | list):
            return ""
        text = str(value).strip()
        if self.field_type in ("enum", "set"):
            return ",".join(
                self.options.get(part.strip(), part.strip()) for part in text.split(",")
            )
        return text


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
        self._owners: dict[str, str | None] = {}

    # --- CrmSource -----------------------------------------------------------------------------

    def fetch_accounts(self, cursor: str | None) -> CrmBatch:
        since = parse_cursor(cursor, "Pipedrive")
        self._owners = {}
        batch = CrmBatch(source=self.name)
        fields = self._fields(batch)
        organizations: dict[str, Any] = {}
        for raw in self._organizations(since):
            org_id = as_text(as_dict(raw).get("id"))
            if org_id:
                organizations.setdefault(org_id, raw)  # the first seen is the newest
            else:
                batch.problems.append(
                    SourceProblem(
                        "customer", None, "Pipedrive returned an organization without an id"
                    )
                )
        for org_id, raw in organizations.items():
            self._add_account(batch, org_id, as_dict(raw), fields)
        updated = (_updated(as_dict(raw)) for raw in organizations.values())
        batch.cursor = next_cursor(cursor, None, updated)
        return batch

    def log_activity(self, crm_id: str, note: str) -> None:
        """A note on the organization."""
        if not crm_id.isdigit():
            raise SourceError(f"{crm_id!r} is not a Pipedrive organization id")
        body = {"content": html.escape(note, quote=False), "org_id": int(crm_id)}
        self.http.json("POST", "/v1/notes", body=body)

    # --- Paging --------------------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        start = 0
        while True:
            query = {**(params or {}), "start": str(start), "limit": str(self.page_size)}
            _, answer = self.http.json("GET", path, params=query)
            rows = as_list(as_dict(answer).get("data"))  # null when there is nothing
            yield from rows
            paging = as_dict(as_dict(as_dict(answer).get("additional_data")).get("pagination"))
            if not paging.get("more_items_in_collection") or not rows:
                return
            next_start = paging.get("next_start")
            start = next_start if isinstance(next_start, int) else start + len(rows)

    def _organizations(self, since: datetime | None) -> Iterator[Any]:
        if since is None:
            yield from self._pages("/v1/organizations", {"sort": "id ASC"})
            return
        for raw in self._pages("/v1/organizations", {"sort": "update_time DESC"}):
            updated = _updated(as_dict(raw))
            if updated is not None and updated < since:
                return  # everything after this changed earlier still
            yield raw

    # --- Fields --------------------------------------------------------------------------------

    def _fields(self, batch: CrmBatch) -> dict[str, OrgField | None]:
        """The configured tier, tags and id fields, found by key or by name."""
        wanted = {"tier": self.tier_property, "tags": self.tags_property, "id": self.id_property}
        known = [_org_field(raw) for raw in self._pages("/v1/organizationFields")]
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
        self, batch: CrmBatch, org_id: str, raw: dict[str, Any], fields: dict[str, OrgField | None]
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
        people = self._people(org_id, raw)
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
        """`owner_id` is an object with the user's email; an older shape gives the id alone."""
        if isinstance(owner, dict):
            return as_text(owner.get("email")).lower() or None
        key = as_text(owner)
        if not key:
            return None
        if key not in self._owners:
            status, answer = self.http.json("GET", f"/v1/users/{key}", allow=(404,))
            email = (
                as_text(as_dict(as_dict(answer).get("data")).get("email")) if status < 400 else ""
            )
            self._owners[key] = email.lower() or None
        return self._owners[key]

    def _people(self, org_id: str, raw: dict[str, Any]) -> list[Person]:
        if raw.get("people_count") == 0:
            return []
        return [
            _person(as_dict(person))
            for person in self._pages(f"/v1/organizations/{org_id}/persons")
            if isinstance(person, dict)
        ]


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
    email = _primary(raw.get("email"))
    return Person(
        label=f"person {name or email or '?'} (id {as_text(raw.get('id'))})",
        name=name or None,
        email=email,
        phone=_primary(raw.get("phone")),
        titled=sounds_like_billing(raw.get("job_title")),
    )


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
    """`update_time`, "YYYY-MM-DD HH:MM:SS" in UTC."""
    try:
        return datetime.strptime(as_text(raw.get("update_time")), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None
