"""HubSpot as a CRM source: companies with their tier, tags, owner and billing contact, read
through the CRM v3 API, and notes added to a company's timeline. HubSpot authorises a
server-side integration of one account with a service key (Development > Keys > Service keys),
which replaced private apps for new integrations; a legacy private app's token keeps working. Both
are sent as a Bearer token and carry the scopes named in `HUBSPOT.token_hint`: a note
(`POST /crm/v3/objects/notes`) needs crm.objects.contacts.write, whatever record it is on.

A full fetch lists every company (`GET /crm/v3/objects/companies`, paged by `after`). An
incremental one searches for companies whose `hs_lastmodifieddate` is at or after the cursor, less
a few minutes (search results lag a little behind edits, and the merge is idempotent), sorted by
that date. One search answers at most 10,000 results; past that the search starts again from the
last date seen. The next cursor is the latest modification date seen. A contact or owner edited
without its company being edited is only seen by a full fetch (cursor None).

Contacts come through the v4 associations API, whose custom association labels ("Billing
contact") mark the person who handles invoices; failing a label, a job title that names billing
or accounts payable (never an executive's). Nobody else is taken: a CFO is not chased by title. Owners' email addresses come
from the owners API, once per owner per fetch.

A company that cannot be used, or a field of one that cannot (a tier arbot does not know),
becomes a SourceProblem naming the company; the rest of the batch still comes through.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.core.clock import Clock, SystemClock
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
    names_billing,
    sounds_like_billing,
    split_tags,
)
from integrations.errors import SourceError
from integrations.source_records import CURSOR_OVERLAP, next_cursor, parse_cursor

DEFAULT_API_URL = "https://api.hubapi.com"
PAGE_SIZE = 100  # the most a list or search page holds
BATCH_SIZE = 100  # ids per batch read
SEARCH_WINDOW = 10_000  # the most results one search pages through
NOTE_TO_COMPANY = 190  # HubSpot's association type id: note → company
COMPANIES = "/crm/v3/objects/companies"
# hs_language: the contact's "Preferred language" (a default contact property, e.g. "es")
CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "jobtitle",
    "hs_language",
)

HUBSPOT = CrmApi(
    label="HubSpot",
    token_setting="HUBSPOT_TOKEN",
    token_hint=(
        "use a service key (HubSpot: Development > Keys > Service keys; an existing legacy "
        "private app's access token also works) with the scopes crm.objects.companies.read, "
        "crm.objects.contacts.read and crm.objects.owners.read, plus "
        "crm.objects.contacts.write when ARBOT_CRM_LOG_ACTIVITY writes notes"
    ),
    scopes=(
        ("POST /crm/v3/objects/notes", "crm.objects.contacts.write"),
        ("GET /crm/v3/objects/companies", "crm.objects.companies.read"),
        ("POST /crm/v3/objects/companies", "crm.objects.companies.read"),
        ("POST /crm/v4/associations/companies/contacts", "crm.objects.contacts.read"),
        ("POST /crm/v3/objects/contacts", "crm.objects.contacts.read"),
        ("GET /crm/v3/owners", "crm.objects.owners.read"),
    ),
    # After a 429 without Retry-After, wait out the whole rate-limit window.
    wait_headers=(("X-HubSpot-RateLimit-Interval-Milliseconds", 0.001),),
)


class HubSpotSource:
    """A CrmSource over one HubSpot account (portal)."""

    name = "hubspot"

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
        clock: Clock | None = None,
        page_size: int = PAGE_SIZE,
        search_window: int = SEARCH_WINDOW,
    ) -> None:
        if not token:
            raise UserError(f"HUBSPOT_TOKEN is empty: {HUBSPOT.token_hint}")
        self.http = CrmClient(HUBSPOT, api_url, {"Authorization": f"Bearer {token}"}, client, sleep)
        self.tier_property = tier_property
        self.tags_property = tags_property
        self.id_property = id_property
        self.phone_region = phone_region
        self.clock = clock or SystemClock()
        self.page_size = page_size
        self.search_window = search_window
        self._owners: dict[str, str | None] = {}

    # --- CrmSource -----------------------------------------------------------------------------

    def fetch_accounts(self, cursor: str | None) -> CrmBatch:
        since = parse_cursor(cursor, "HubSpot")
        self._owners = {}
        companies: dict[str, Any] = {}
        without_id = 0
        found = self._all_companies() if since is None else self._changed_companies(since)
        for raw in found:
            company_id = as_text(as_dict(raw).get("id"))
            if company_id:
                companies[company_id] = raw  # a company seen twice (a search restarted) once
            else:
                without_id += 1
        people = self._people(list(companies))
        batch = CrmBatch(source=self.name)
        for _ in range(without_id):
            batch.problems.append(
                SourceProblem(
                    "customer", None, "HubSpot returned a company without an id; it was skipped"
                )
            )
        for company_id, raw in companies.items():
            self._add_account(batch, company_id, raw, people.get(company_id, []))
        modified = (_modified(as_dict(raw)) for raw in companies.values())
        batch.cursor = next_cursor(cursor, None, modified)
        return batch

    def log_activity(self, crm_id: str, note: str) -> str | None:
        """A note on the company's timeline, dated now; HubSpot's id of the note."""
        stamp = self.clock.now().astimezone(UTC).isoformat(timespec="milliseconds")
        body = {
            "properties": {
                "hs_timestamp": stamp.replace("+00:00", "Z"),
                "hs_note_body": html.escape(note, quote=False),
            },
            "associations": [
                {
                    "to": {"id": crm_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": NOTE_TO_COMPANY,
                        }
                    ],
                }
            ],
        }
        _, answer = self.http.json("POST", "/crm/v3/objects/notes", body=body)
        return as_text(as_dict(answer).get("id")) or None

    # --- Companies -----------------------------------------------------------------------------

    def _properties(self) -> list[str]:
        wanted = ["name", "domain", "hs_additional_domains", "hubspot_owner_id"]
        wanted += ["hs_lastmodifieddate", self.tier_property, self.id_property]
        if self.tags_property:
            wanted.append(self.tags_property)
        return list(dict.fromkeys(wanted))

    def _all_companies(self) -> Iterator[Any]:
        after: str | None = None
        while True:
            params = {
                "limit": str(self.page_size),
                "properties": ",".join(self._properties()),
                "archived": "false",
            }
            if after:
                params["after"] = after
            _, answer = self.http.json("GET", COMPANIES, params=params)
            yield from as_list(as_dict(answer).get("results"))
            after = _next_after(answer)
            if after is None:
                return

    def _changed_companies(self, since: datetime) -> Iterator[Any]:
        start = since - CURSOR_OVERLAP
        while True:
            rows, more = self._search_window(start)
            yield from rows
            if not more:
                return
            latest = max((t for t in (_modified(as_dict(r)) for r in rows) if t), default=None)
            if latest is None or latest <= start:
                raise SourceError(
                    f"HubSpot holds more than {self.search_window} companies modified at "
                    f"{start:%Y-%m-%d %H:%M:%S} UTC, more than one search can page through: "
                    "clear the HubSpot sync cursor to fetch every company"
                )
            start = latest  # on from the latest seen; those seen again are merged once

    def _search_window(self, start: datetime) -> tuple[list[Any], bool]:
        """The companies one search pages through, and whether more lie past its window."""
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(_millis(start)),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": self._properties(),
            "limit": self.page_size,
        }
        rows: list[Any] = []
        while True:
            _, answer = self.http.json("POST", f"{COMPANIES}/search", body=body, repeatable=True)
            rows += as_list(as_dict(answer).get("results"))
            after = _next_after(answer)
            if after is None:
                return rows, False
            if len(rows) + self.page_size > self.search_window:
                return rows, True
            body["after"] = after

    def _add_account(
        self, batch: CrmBatch, company_id: str, raw: Any, people: list[Person]
    ) -> None:
        props = as_dict(as_dict(raw).get("properties"))
        name = as_text(props.get("name"))
        if not name:
            batch.problems.append(
                SourceProblem(
                    "customer",
                    company_id,
                    f"HubSpot company {company_id}: name is empty; give the company a name in "
                    "HubSpot",
                )
            )
            return
        who = f"HubSpot company {name} (id {company_id})"
        problems: list[str] = []
        tier = None
        try:
            tier = checked_tier(props.get(self.tier_property), self.tier_property)
        except UnreadableValue as exc:
            problems.append(str(exc))
        account = CrmAccount(
            crm_id=company_id,
            name=name,
            domains=self._domains(props, problems),
            external_id=as_text(props.get(self.id_property)) or None,
            tier=tier,
            owner_email=self._owner_email(props.get("hubspot_owner_id"), problems),
            billing_contact=billing_contact(people, self.phone_region, problems),
            tags=split_tags(props.get(self.tags_property)) if self.tags_property else (),
        )
        batch.accounts.append(account)
        for problem in problems:
            batch.problems.append(SourceProblem("customer", company_id, f"{who}: {problem}"))

    def _domains(self, props: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
        named = [("domain", as_text(props.get("domain")))]
        named += [
            ("hs_additional_domains", part.strip())
            for part in as_text(props.get("hs_additional_domains")).split(";")
        ]
        domains: list[str] = []
        for field, text in named:
            if not text:
                continue
            try:
                domains.append(bare_domain(text))
            except UnreadableValue as exc:
                problems.append(f"{field} {exc}")
        return tuple(dict.fromkeys(domains))

    # --- Owners and contacts ------------------------------------------------------------------

    def _owner_email(self, owner_id: object, problems: list[str]) -> str | None:
        key = as_text(owner_id)
        if not key:
            return None
        if key not in self._owners:
            status, answer = self.http.json(
                "GET", f"/crm/v3/owners/{key}", params={"idProperty": "id"}, allow=(404,)
            )
            email = as_text(as_dict(answer).get("email")).lower() if status < 400 else ""
            self._owners[key] = email or None
            if status == 404:
                problems.append(f"owner {key} is not a HubSpot user any more; no owner was taken")
        return self._owners[key]

    def _people(self, company_ids: list[str]) -> dict[str, list[Person]]:
        """Each company's associated contacts, in HubSpot's order."""
        links = self._contact_links(company_ids)
        contacts = self._contacts(sorted({cid for pairs in links.values() for cid, _ in pairs}))
        people: dict[str, list[Person]] = {}
        for company_id, pairs in links.items():
            for contact_id, labelled in pairs:
                if contact_id in contacts:
                    people.setdefault(company_id, []).append(
                        _person(contact_id, contacts[contact_id], labelled)
                    )
        return people

    def _contact_links(self, company_ids: list[str]) -> dict[str, list[tuple[str, bool]]]:
        """company id → (contact id, whether an association label says billing)."""
        links: dict[str, list[tuple[str, bool]]] = {}
        pending: list[dict[str, str]] = [{"id": i} for i in company_ids]
        while pending:
            chunk, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
            _, answer = self.http.json(
                "POST",
                "/crm/v4/associations/companies/contacts/batch/read",
                body={"inputs": chunk},
                allow=(207,),  # some companies have no contacts: reported as errors
                repeatable=True,
            )
            for result in as_list(as_dict(answer).get("results")):
                company_id = as_text(as_dict(as_dict(result).get("from")).get("id"))
                for linked in as_list(as_dict(result).get("to")):
                    types = as_list(as_dict(linked).get("associationTypes"))
                    labelled = any(names_billing(as_dict(t).get("label")) for t in types)
                    contact_id = as_text(as_dict(linked).get("toObjectId"))
                    links.setdefault(company_id, []).append((contact_id, labelled))
                after = _next_after(result)
                if after is not None:
                    pending.append({"id": company_id, "after": after})
        return links

    def _contacts(self, contact_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(contact_ids), BATCH_SIZE):
            chunk = contact_ids[offset : offset + BATCH_SIZE]
            _, answer = self.http.json(
                "POST",
                "/crm/v3/objects/contacts/batch/read",
                body={"properties": list(CONTACT_PROPERTIES), "inputs": [{"id": i} for i in chunk]},
                allow=(207,),  # some ids no longer exist: the rest still come
                repeatable=True,
            )
            for raw in as_list(as_dict(answer).get("results")):
                found[as_text(as_dict(raw).get("id"))] = as_dict(as_dict(raw).get("properties"))
        return found


# --- Reading fields ----------------------------------------------------------------------------


def _person(contact_id: str, props: dict[str, Any], labelled: bool) -> Person:
    name = " ".join(
        p for p in (as_text(props.get("firstname")), as_text(props.get("lastname"))) if p
    )
    return Person(
        label=f"contact {name or as_text(props.get('email')) or contact_id} (id {contact_id})",
        name=name or None,
        email=as_text(props.get("email")) or None,
        phone=as_text(props.get("phone")) or as_text(props.get("mobilephone")) or None,
        flagged=labelled,
        titled=sounds_like_billing(props.get("jobtitle")),
        language=as_text(props.get("hs_language")) or None,
    )


def _modified(raw: dict[str, Any]) -> datetime | None:
    """When the company was last modified: its hs_lastmodifieddate, else its updatedAt."""
    props = as_dict(raw.get("properties"))
    for value in (props.get("hs_lastmodifieddate"), raw.get("updatedAt")):
        text = as_text(value)
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        try:
            return datetime.fromisoformat(text).astimezone(UTC) if text else None
        except ValueError:
            continue
    return None


def _millis(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _next_after(answer: Any) -> str | None:
    after = as_dict(as_dict(as_dict(answer).get("paging")).get("next")).get("after")
    return as_text(after) or None
