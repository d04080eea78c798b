"""What the CRM sources (HubSpot, Pipedrive) share: an HTTP client that authenticates with a fixed
token, waits out rate limits and retries server errors, and the checks both make on what a CRM
record says (tier, tags, domains, the billing contact).

`CrmClient` waits out a 429 for as long as the provider asks (`Retry-After`, or the provider's
own reset header) up to a cap, through an injected `sleep`; retries a server error twice when the
request can safely be repeated; and otherwise raises an error that says what to fix: a refused
token names the setting that holds it (`HUBSPOT_TOKEN`, `PIPEDRIVE_TOKEN`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.core.language import parse_language
from bot.core.vocabulary import TIERS
from integrations.base.ledger import FREE_MAIL, ContactRecord
from integrations.csv_common import normalise_email, normalise_phone
from integrations.errors import SourceError, SourceUnavailable, json_or_empty
from integrations.http_retry import Retries
from integrations.tls import http_client

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds: a longer rate-limit wait ends the run instead of blocking it


class CrmTokenRejected(SourceError):
    """The CRM refused the configured token (wrong, expired, revoked, or missing a permission)."""


@dataclass(frozen=True, slots=True)
class CrmApi:
    """How one CRM's API authenticates and says how long to wait."""

    label: str  # "HubSpot"
    token_setting: str  # the environment variable holding the token: "HUBSPOT_TOKEN"
    token_hint: str  # where a person gets a valid token
    # Headers that give the seconds to wait after a 429, after Retry-After, with a scale factor
    # (HubSpot gives its window in milliseconds).
    wait_headers: tuple[tuple[str, float], ...] = ()
    # The permission each request needs, by "METHOD /path-prefix", so a 403 names the one to add.
    scopes: tuple[tuple[str, str], ...] = ()

    def scope_for(self, method: str, path: str) -> str | None:
        request = f"{method.upper()} {path}"
        for prefix, scope in self.scopes:
            if request.startswith(prefix):
                return scope
        return None


class CrmClient:
    """Requests to one CRM's API with its token, answers decoded as JSON."""

    def __init__(
        self,
        api: CrmApi,
        base_url: str,
        auth: Mapping[str, str],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.api = api
        self.base_url = base_url.rstrip("/")
        self.auth = dict(auth)
        self.http = http or http_client(timeout=30)
        self.sleep = sleep
        self.max_wait = max_wait

    def json(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        allow: Collection[int] = (),
        repeatable: bool | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON answer) of `method path`. A 4xx raises unless its status is in `allow`.
        `repeatable` says a POST only reads (a search), so a server error may be retried."""
        response = self.request(method, path, params, body, allow, repeatable)
        try:
            return response.status_code, response.json(parse_float=Decimal)
        except ValueError:
            raise SourceError(
                f"{self.api.label} answered {method} {path} with something that is not JSON: "
                "try again later"
            ) from None

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        allow: Collection[int] = (),
        repeatable: bool | None = None,
    ) -> httpx.Response:
        repeatable = method.upper() == "GET" if repeatable is None else repeatable
        retries = Retries(
            label=self.api.label,
            repeatable=repeatable,
            sleep=self.sleep,
            max_wait=self.max_wait,
            asked_wait=lambda response: wait_seconds(response, self.api.wait_headers),
            when_to_retry=lambda wait: f"try again in {max(wait / 60, 1):.0f} minutes",
            log=log,
        )
        headers = {"Accept": "application/json", **self.auth}
        url = self.base_url + path
        while True:
            response = retries.send(
                lambda: self.http.request(method, url, params=params, json=body, headers=headers)
            )
            if retries.again(response):
                continue
            if response.status_code < 400 or response.status_code in allow:
                return response
            raise self._failure(method, path, response)

    def _failure(self, method: str, path: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        detail = error_detail(response)
        where = f"{method} {path}"
        if status == 401:
            return CrmTokenRejected(
                f"{self.api.label} refused the token in {self.api.token_setting} ({detail}): "
                f"set {self.api.token_setting} to a valid token; {self.api.token_hint}"
            )
        if status == 403:
            scope = self.api.scope_for(method, path)
            needs = f"the scope {scope}" if scope else "a permission"
            return CrmTokenRejected(
                f"{self.api.label} refused {where} ({detail}): the token in "
                f"{self.api.token_setting} lacks {needs}, which this needs; add it, then "
                f"{self.api.token_hint}"
            )
        if status == 429 or status >= 500:
            return SourceUnavailable(
                f"{self.api.label} answered {status} to {where} ({detail}): try again later"
            )
        return SourceError(f"{self.api.label} refused {where} with {status}: {detail}")


def wait_seconds(
    response: httpx.Response, wait_headers: Iterable[tuple[str, float]]
) -> float | None:
    """How long a 429 asks us to wait: Retry-After (seconds or an HTTP date, read against the
    answer's own Date), else the first of the provider's headers that holds a number."""
    retry_after = (response.headers.get("Retry-After") or "").strip()
    if retry_after:
        if re.fullmatch(r"\d+(\.\d+)?", retry_after):
            return float(retry_after)
        until = _http_date(retry_after)
        sent = _http_date(response.headers.get("Date") or "")
        if until is not None and sent is not None:
            return max((until - sent).total_seconds(), 0.0)
    for name, scale in wait_headers:
        value = (response.headers.get(name) or "").strip()
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return float(value) * scale
    return None


def _http_date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError):
        return None


def error_detail(response: httpx.Response) -> str:
    """The provider's own words about what went wrong, short."""
    body = json_or_empty(response)
    for key in ("message", "error", "error_info", "category"):
        if body.get(key):
            return str(body[key])[:300]
    return response.reason_phrase or f"HTTP {response.status_code}"


# --- What a CRM record says --------------------------------------------------------------------

# A title or label that names the work of paying invoices: billing or accounts payable. Finance,
# controller or accounting titles are not enough (they fit a CFO or a Financial Controller too).
_BILLING_TITLE = re.compile(
    r"\b(billing|accounts?[\s-]+payables?|a/p|ap|payables?|invoic\w*)\b", re.IGNORECASE
)
# An executive is never chased only because of a title, even "Chief Billing Officer"; only a
# label a person set in the CRM makes them the billing contact.
_EXECUTIVE_TITLE = re.compile(
    r"\b(chief|c[efo]o|cxo|president|vp|vice[\s-]+president|founder|co-?founder|owner|"
    r"chair\w*|evp|svp)\b",
    re.IGNORECASE,
)
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def as_dict(value: Any) -> dict[str, Any]:
    """An answer's object, or {} where the provider sent something else."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str:
    """A scalar as trimmed text; "" for nothing, or for an object or list where text belongs."""
    return str(value).strip() if value is not None and not isinstance(value, dict | list) else ""


class UnreadableValue(Exception):
    """One value of a CRM record is unusable; the source names the record and the field."""


def checked_tier(value: object, field: str) -> str | None:
    """The tier a CRM field holds, lower case; None when empty. UnreadableValue when it is not
    one of arbot's tiers."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if text.lower() not in TIERS:
        raise UnreadableValue(
            f"{field} {text!r} is not a tier arbot knows ({', '.join(TIERS)}); "
            "the tier was left as it was"
        )
    return text.lower()


def split_tags(value: object) -> tuple[str, ...]:
    """Tags from a field holding several, separated by semicolons or commas, without repeats."""
    text = str(value) if value is not None else ""
    tags = (part.strip() for part in re.split(r"[;,]", text))
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def bare_domain(text: str) -> str:
    """`https://www.Acme.example/about` → `acme.example`; UnreadableValue when it is no domain."""
    raw = text.strip().lower()
    host = urlsplit(raw if "://" in raw else f"//{raw}").hostname or ""
    host = host.removeprefix("www.").rstrip(".")
    if not _DOMAIN.fullmatch(host):
        raise UnreadableValue(f"{text!r} is not a domain name")
    return host


def email_domain(email: str) -> str | None:
    """The company domain an address is at; None for a free-mail provider."""
    domain = email.rsplit("@", 1)[-1].lower()
    return None if domain in FREE_MAIL else domain


def names_billing(label: object) -> bool:
    """An association label a person set in the CRM that names billing or accounts payable
    ("Billing contact", "Accounts payable")."""
    return isinstance(label, str) and bool(_BILLING_TITLE.search(label))


def sounds_like_billing(title: object) -> bool:
    """A job title that says the person handles invoices (billing, accounts payable) and is not
    an executive's: "AP Specialist" is; "Chief Financial Officer", "Controller" and "VP Billing"
    are not."""
    return (
        isinstance(title, str)
        and bool(_BILLING_TITLE.search(title))
        and not _EXECUTIVE_TITLE.search(title)
    )


@dataclass(frozen=True, slots=True)
class Person:
    """Someone at the company who could be its billing contact, as the CRM lists them."""

    label: str  # how a problem names them: "contact Jo Diaz (id 201)"
    name: str | None
    email: str | None  # as the CRM has it, not yet checked
    phone: str | None
    flagged: bool = False  # marked in the CRM as the billing contact
    titled: bool = False  # a job title that says they handle invoices
    language: str | None = None  # their preferred language as the CRM has it, not yet checked


def billing_contact(
    people: Iterable[Person], phone_region: str, problems: list[str]
) -> ContactRecord | None:
    """Of the people with a usable address: the first flagged as billing (an association label),
    else the first whose title names billing or accounts payable (never an executive's: see
    `sounds_like_billing`); None when nobody is, as a CRM's first contact may be a CEO or a
    salesperson and arbot never chases someone only because they are listed. Adds to `problems` the unusable
    address of someone flagged or titled, and the chosen one's unusable phone number (the contact
    then comes without it)."""
    usable: list[tuple[Person, str]] = []
    for person in people:
        if not person.email:
            continue
        try:
            usable.append((person, normalise_email(person.email)))
        except ValueError as exc:
            if person.flagged or person.titled:
                problems.append(f"{person.label}, who handles billing: email {exc}")
    if not usable:
        return None
    flagged = [entry for entry in usable if entry[0].flagged]
    titled = [entry for entry in usable if entry[0].titled]
    if not (flagged or titled):
        return None
    person, email = (flagged or titled)[0]
    phone = None
    if person.phone:
        try:
            phone = normalise_phone(person.phone, phone_region)
        except ValueError as exc:
            problems.append(f"{person.label}: phone {exc}; the billing contact comes without it")
    language = None
    if person.language:
        try:
            language = parse_language(person.language)
        except ValueError as exc:
            problems.append(f"{person.label}: language {exc}; the billing contact comes without it")
    return ContactRecord(person.name, email, phone, None, None, language)
