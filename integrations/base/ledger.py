"""What a ledger source and a CRM hand the core: already-validated records in a batch, what any
record's dates and text may hold, the sources' protocols, the ledger CSV's columns, and the tokens
of a connected accounting source.

A ledger source (the CSV import, QuickBooks Online, Xero, FreshBooks) turns whatever it reads into a
LedgerBatch; `bot.ledger.upsert` upserts a batch the same way whatever its source, so every source
follows the same rules."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple, Protocol, runtime_checkable

# The dates: in bot.core, where a command's --as-of is checked without loading this module.
from bot.core.ledger_dates import EARLIEST_DATE as EARLIEST_DATE
from bot.core.ledger_dates import LATEST_DATE as LATEST_DATE
from bot.core.ledger_dates import date_problem as date_problem

# --- What a record may hold, whatever its source ---------------------------------------------
# The ledger CSV checks each cell with these, and `bot.ledger.screening` checks every batch with
# them before it is stored. A date far outside these years is a typo (9999-12-31) that would
# break the reports' date arithmetic; a control character or a bidirectional override (U+202E
# shows "Acme \u202eDTL" reversed in Slack and in emails) has no place in a ledger, whose text
# fields are all one line.

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def text_problem(text: str) -> str | None:
    """What is wrong with `text` as a ledger text field, or None: the first control character
    (C0, DEL, C1, a line or paragraph separator) or bidirectional embedding, override or isolate."""
    if text.isprintable():  # the usual case, checked at C speed: none of them is printable
        return None
    found = _CONTROL.search(text)
    if found is None:
        return None
    return (
        f"contains a control character (U+{ord(found.group()):04X} at character "
        f"{found.start() + 1}); remove it"
    )


def visible(text: str, limit: int = 60) -> str:
    """`text` safe to show in a message: each control character written as its code point
    (U+202E as \\u202e), and cut to `limit` characters."""
    shown = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return shown if len(shown) <= limit else f"{shown[: limit - 1]}…"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    name: str | None
    email: str | None  # normalised address
    phone: str | None  # E.164
    # Consent to texts as the source gives it: True given, False withdrawn (the ledger CSV's
    # sms_consent "false"), None not given by this source, which keeps what is stored.
    sms_consent: bool | None
    # where the consent or its withdrawal was recorded, e.g. "ledger.csv row 12"
    consent_source: str | None
    language: str | None = None  # BCP 47 tag (bot.core.language); None: not given, keep stored

    def key(self) -> tuple[str, str]:
        return ((self.email or "").lower(), self.phone or "")


@dataclass(slots=True)
class CustomerRecord:
    """Customer-level fields; None means "not given by this source", which keeps what is stored."""

    external_id: str
    name: str
    tier: str | None = None
    owner_slack_id: str | None = None
    timezone: str | None = None
    never_automate: bool | None = None
    tags: list[str] | None = None
    language: str | None = None  # BCP 47 tag, for contacts without their own
    contacts: list[ContactRecord] = field(default_factory=list)


class InvoiceRecord(NamedTuple):
    """One invoice as its source gives it. A named tuple: a book's 100,000 are made several
    times faster than as a frozen dataclass, and are as unchangeable."""

    customer_external_id: str
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    balance: Decimal
    # "void" when the source voided or deleted it (it stops every follow-up); None = open or paid
    # by its balance, the CSV's only way of saying it.
    status: str | None = None
    payment_link: str | None = None  # the source's own pay-online link (QuickBooks InvoiceLink)
    external_id: str | None = None  # the source's own id, where it has one beside the number
    document_url: str | None = None  # where its PDF copy is fetched (the ledger CSV's pdf_url)
    # When the source says it was paid (UTC; the ledger CSV's paid_date, from the start of that
    # day in the business's timezone); None: not said, and a paid invoice is taken as paid when
    # arbot sees it so.
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment the source recorded, with what it was applied to (invoice number → amount)."""

    external_id: str
    customer_external_id: str | None
    received_on: date
    amount: Decimal
    currency: str
    reference: str | None = None
    allocations: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A record the source returned that could not be read; the rest of the batch still syncs."""

    kind: str  # "invoice", "payment", "customer"
    external_id: str | None
    message: str  # what is wrong, in words a person can act on


@dataclass(slots=True)
class LedgerBatch:
    source: str  # "csv", "quickbooks", "xero", ...
    label: str  # what a person would call it, e.g. the file name
    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    invoices: list[InvoiceRecord] = field(default_factory=list)
    payments: list[PaymentRecord] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    cursor: str | None = None  # where the next incremental fetch starts (source-defined)
    # the source's ids of invoices it deleted outright (a source that returns them as records,
    # status "void", leaves this empty): each stored one is voided
    deleted_invoices: list[str] = field(default_factory=list)
    # True when the batch holds every invoice the source has (a full sync of a source that leaves
    # deleted invoices out): a stored open one of this source it lacks, and names in no problem,
    # was deleted there and is voided, unless it lacks too many (bot/ledger/deleted_invoices.py)
    complete: bool = False


# The ledger CSV's columns: the file format's contract (integrations.csv_ledger reads it,
# bot.ledger.sample writes it).
REQUIRED_COLUMNS = (
    "customer_id",
    "customer_name",
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "amount",
    "balance",
)


OPTIONAL_COLUMNS = (
    "contact_name",
    "email",
    "phone",
    "tier",
    "owner_slack_id",
    "timezone",
    "sms_consent",
    "never_automate",
    "tags",
    "language",
)


class LedgerSource(Protocol):
    def fetch(self) -> LedgerBatch:
        """Read the source and return what it holds, validated. Raises UserError on bad input."""
        ...


class IncrementalSource(Protocol):
    """A source that can return only what changed since a cursor it handed out before."""

    name: str

    def fetch_since(self, cursor: str | None) -> LedgerBatch:
        """Everything changed since `cursor` (None = everything). The batch carries the next one."""
        ...


@runtime_checkable
class RefetchingSource(Protocol):
    """An IncrementalSource that can fetch records again by their own ids: those a sync skipped
    are fetched again by the next one, so its cursor moves on past them."""

    def fetch_since_and_again(
        self, cursor: str | None, again: Mapping[str, Sequence[str]]
    ) -> LedgerBatch:
        """What `fetch_since(cursor)` gives, and the records `again` names by kind ("customer",
        "invoice", "payment") and id, as the source has them now (one it no longer has is left
        out; one deleted since `cursor` is named deleted as ever)."""
        ...


# Addresses at these are people's own; their domain says nothing about the company.
FREE_MAIL = frozenset(
    {
        "aol.com",
        "gmail.com",
        "googlemail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "web.de",
        "yahoo.com",
        "yandex.com",
        "yandex.ru",
        "zoho.com",
    }
)


@dataclass(frozen=True, slots=True)
class CrmAccount:
    """What a CRM knows about one customer company: context, never money."""

    crm_id: str
    name: str
    domains: tuple[str, ...] = ()  # lower case, e.g. ("ridgeline.example",)
    external_id: str | None = None  # the ledger's customer id, when the CRM keeps it
    tier: str | None = None  # "strategic" | "standard" | "transactional", already checked
    owner_email: str | None = None  # the account owner, lower case
    billing_contact: ContactRecord | None = None
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class CrmBatch:
    source: str  # "hubspot", "pipedrive"
    accounts: list[CrmAccount] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    cursor: str | None = None


class CrmSource(Protocol):
    name: str

    def fetch_accounts(self, cursor: str | None) -> CrmBatch:
        """Every company (None) or those changed since the cursor, with the next cursor."""
        ...

    def log_activity(self, crm_id: str, note: str) -> str | None:
        """Add a note to the company's timeline in the CRM; the CRM's id of the note, if told.
        SourceUnavailable when it may succeed later (a 429 or a server error)."""
        ...


class InvoiceNotes(Protocol):
    """Writes a note of a sent reminder back to the invoice's history in the source."""

    def add_note(self, invoice_external_id: str, note: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime  # when the access token stops working (UTC)
    tenant_id: str | None = None  # the QuickBooks realm, Xero tenant or FreshBooks account


class TokenStore(Protocol):
    def load(self, provider: str) -> Tokens | None: ...

    def save(self, provider: str, tokens: Tokens) -> None: ...
