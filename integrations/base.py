"""The small protocols the core talks to the outside world through, and the shapes they pass.

A ledger source (the CSV import today; QuickBooks Online and Xero later) turns whatever it reads into
a LedgerBatch of already-validated records; `bot.ledger.upsert` upserts a batch the same way whatever its
source, so every source follows the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ContactRecord:
    name: str | None
    email: str | None  # normalised address
    phone: str | None  # E.164
    sms_consent: bool
    consent_source: str | None  # where the consent was recorded, e.g. "ledger.csv row 12"

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
    contacts: list[ContactRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
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
class BankPayment:
    """One incoming payment as the bank reported it."""

    row: int  # where it is in the file, as a spreadsheet numbers it
    received_on: date
    amount: Decimal  # more than zero, in `currency`
    currency: str  # ISO 4217, upper case
    reference: str  # may be empty
    payer: str  # may be empty
    external_id: str  # stable fingerprint, see integrations.csv_payments


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

    def log_activity(self, crm_id: str, note: str) -> None:
        """Add a note to the company's timeline in the CRM."""
        ...


class InvoiceNotes(Protocol):
    """Writes a note of a sent reminder back to the invoice's history in the source."""

    def add_note(self, invoice_external_id: str, note: str) -> None: ...


# --- Slack: what the core hands the Slack side, and what it asks of it ---------------------------


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(slack_id: str) -> str:
    """A user (U…/W…) or a user group (S…)."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


@dataclass(frozen=True, slots=True)
class CardInvoice:
    number: str
    balance: str  # formatted, e.g. "$1,200.00"
    days_past_due: int


@dataclass(frozen=True, slots=True)
class ReminderCard:
    """One reminder (or escalation) as the finance channel sees it."""

    reminder_id: int
    customer_name: str
    customer_id: str
    tier: str
    action: str  # "remind" | "escalate"
    state: str
    step: str
    channel: str | None
    contact: str | None
    invoices: tuple[CardInvoice, ...]
    total: str
    subject: str | None
    preview: str | None
    send_after: str | None  # already formatted for people
    acted_by: str | None = None  # Slack user id (or "playbook")
    acted_at: str | None = None
    note: str | None = None  # skip reason, cancel reason, error, escalation reason


@dataclass(frozen=True, slots=True)
class TierLine:
    tier: str
    reminders: int
    escalations: int
    amount: str
    awaiting: int  # reminders still waiting for approval


@dataclass(frozen=True, slots=True)
class PlanSummary:
    day: date
    tiers: tuple[TierLine, ...]
    held: tuple[tuple[str, int], ...]  # (reason, customers)


@dataclass(frozen=True, slots=True)
class PostedGroup:
    ts: str
    reminder_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PostedPlan:
    channel: str
    header_ts: str
    groups: tuple[PostedGroup, ...]


@dataclass(frozen=True, slots=True)
class ReviewOption:
    text: str  # e.g. "Ridgeline Roofing: INV-1 $1,200.00 (exact amount)"


@dataclass(frozen=True, slots=True)
class ReviewView:
    """A bank payment a person has to place, with the candidates to apply it to."""

    id: int
    payment: str  # "$1,200.00 on 2026-03-14 from RIDGELINE ROOFING, ref 'March'"
    why: str
    options: tuple[ReviewOption, ...]
    state: str  # open | applied | unmatched
    decided: str | None = None  # "applied option 2 by <@U1>"


@dataclass(frozen=True, slots=True)
class ProposalView:
    """A proposed playbook change: the evidence and the diff, with Approve / Reject while it waits."""

    version_id: int  # PlaybookVersion.id: the buttons' value
    version: int  # the number people see (`arbot playbook list`)
    rationale: str  # the evidence, in words
    diff: str  # unified diff of the playbook file and the templates it changes
    status: str  # proposed | active | retired
    decided: str | None = None  # "approved", "rejected", or why it was set aside
    decided_by: str | None = None  # a Slack user id, or "cli" / "system"


class SlackPort(Protocol):
    """What the core asks of Slack; the implementation builds the Block Kit and calls the API."""

    def post_plan(
        self,
        channel: str,
        summary: PlanSummary,
        cards: list[ReminderCard],
        on_group: Callable[[str, PostedGroup], None],
    ) -> PostedPlan:
        """Post the header, then the cards in as few messages as Block Kit allows, calling
        `on_group(channel_id, group)` right after each message is posted."""
        ...

    def update_plan_header(self, channel: str, ts: str, summary: PlanSummary) -> None: ...

    def update_cards(self, channel: str, ts: str, cards: list[ReminderCard]) -> None: ...

    def post_text(self, channel: str, text: str) -> None:
        """A plain message to the channel; the text is already Slack mrkdwn."""
        ...

    def post_review(self, channel: str, view: ReviewView) -> tuple[str, str]:
        """Post a bank payment to place; returns (channel id, ts)."""
        ...

    def update_review(self, channel: str, ts: str, view: ReviewView) -> None: ...


# --- Installing arbot into another Slack workspace ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackGrant:
    """What Slack granted for an install (its oauth.v2.access answer), read at the edge."""

    token: str  # the workspace's bot token; "" when Slack sent none
    team_id: str  # "" when Slack named no workspace
    team_name: str | None
    enterprise: bool  # an Enterprise Grid install, or a workspace of a Grid organisation
    installer: str | None  # the Slack user id of whoever installed
    channel_id: str | None  # the finance channel the installer picked (incoming-webhook scope)
    channel: str | None = None  # its name
    webhook_url: str | None = None
    webhook_configuration_url: str | None = None
    app_id: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    scopes: str = ""
    token_type: str | None = None


class SlackInstalls(Protocol):
    """Slack's side of installing arbot into a workspace, and the store of the tokens it grants
    (sealed at rest). Failures Slack reports raise integrations.errors.InstallFailed."""

    def exchange_code(self, code: str) -> SlackGrant:
        """Trade the one-time code Slack sent the installer back with for the grant."""
        ...

    def main_team(self) -> str | None:
        """The workspace SLACK_BOT_TOKEN belongs to (None without one)."""
        ...

    def keep(self, grant: SlackGrant) -> None:
        """Store the granted tokens, sealed."""
        ...

    def forget(self, team_id: str) -> None:
        """Take a workspace's stored tokens out again."""
        ...

    def revoke(self, token: str) -> None:
        """Give a token back to Slack (best effort; nothing for "")."""
        ...


# --- Escalations: the thread a person takes over -----------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryLine:
    at: datetime
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    number: str
    balance: str
    days_overdue: int
    disputed: bool
    promise_date: date | None


@dataclass(frozen=True, slots=True)
class EscalationView:
    id: int
    customer_id: int
    customer_name: str
    customer_ref: str
    tier: str
    owner: str | None
    state: str
    reason: str
    detail: str | None
    label: str | None  # the triage label of the reply behind it, if any
    wrote: str | None  # what the customer wrote, if a reply opened it
    at_stake: str
    suggestion: str
    claimed_by: str | None
    invoices: tuple[InvoiceLine, ...]
    history: tuple[HistoryLine, ...]


class EscalationPort(Protocol):
    def post_escalation(self, channel: str, view: EscalationView) -> tuple[str, str]:
        """Post the parent message; returns (channel id, ts)."""
        ...

    def post_history(self, channel: str, thread_ts: str, view: EscalationView) -> None:
        """The account's history, in the parent's thread."""
        ...

    def update_escalation(self, channel: str, ts: str, view: EscalationView) -> None: ...

    def post_in_thread(self, channel: str, thread_ts: str, text: str) -> None: ...

    def post_text(self, channel: str, text: str) -> None: ...


# --- Inbound email: what a raw message says, read at the edge --------------------------------


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification says about one of our messages."""

    action: str | None  # "failed", "delayed", "delivered", ... for the recipient reported on
    recipients: tuple[str, ...]  # every address the report is about
    failed_recipients: tuple[str, ...]  # those whose Action is "failed"
    status: str | None  # e.g. "5.1.1"
    permanent: bool  # failed with a 5.x.x status: the address will not work
    diagnostic: str | None  # e.g. "550 5.1.1 <jo@example.org>: User unknown"
    original_message_id: str | None  # the Message-ID of our message it is about

    @property
    def summary(self) -> str:
        code = f" ({self.status})" if self.status else ""
        if self.action == "delayed":
            return f"delivery delayed{code}, not a failure: the mail system is still trying"
        if self.permanent:
            return f"delivery failed permanently{code}: the address does not accept mail"
        if self.action == "failed":
            return f"delivery failed{code}, possibly temporarily"
        return f"delivery report: {self.action or 'no action given'}{code}"


@dataclass(frozen=True)
class InboundEmail:
    """One inbound email, read by the adapter: who sent it, what they wrote, and what it can be
    matched by (ids, the signed per-reminder addresses it was delivered to)."""

    sender: str  # bare address, lowercased; "" when the message names none
    sender_name: str | None
    subject: str | None
    message_id: str | None  # with its angle brackets, as stored on Reminder.message_id
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    recipients: tuple[str, ...]  # lowercased, from the headers mail is delivered by
    text: str  # what the sender wrote: quoted history and signature removed
    full_text: str  # the whole body as text (HTML converted when there is no text part)
    automatic: str | None  # why a machine sent it; None when a person did
    bounce: Bounce | None  # for a delivery status notification


# --- Triage: what a customer's reply is ---------------------------------------------------------

LABELS: tuple[str, ...] = (
    "dispute",
    "already_paid",
    "promise_to_pay",
    "payment_plan_request",
    "hardship",
    "question",
    "wrong_contact",
    "opt_out",
    "other",
)


@dataclass(frozen=True)
class Triage:
    label: str  # one of LABELS
    confidence: float  # 0..1
    promise_date: date | None  # only for promise_to_pay
    reason: str  # which rule fired on which words, shown to people


class Classifier(Protocol):
    def classify(self, text: str, today: date) -> Triage: ...


class FallbackClassifier(Classifier, Protocol):
    """A classifier that needs nobody else (bot.replies.triage's rules): what an optional model
    falls back to, and what cuts a reply to the customer's own words before a model sees it."""

    def own_words(self, text: str) -> str:
        """The reply without quoted history or a signature."""
        ...


# --- Drafting: a reminder's text polished by a model ----------------------------------------


@dataclass(frozen=True, slots=True)
class DraftAnswer:
    """A polished draft, already checked at the edge: subject at most 150 characters (None for
    a text message), body 1 to 5,000."""

    subject: str | None
    body: str


class Drafter(Protocol):
    def draft(
        self, channel: str, subject: str | None, body: str, examples: list[str]
    ) -> DraftAnswer | None:
        """A polished version of the draft in the style of `examples`, or None on any failure
        (the template's text stands)."""
        ...


# --- Sending: one outgoing message, and what became of it ------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    reminder_id: int
    channel: str  # "email" | "sms"
    to: str  # an email address, or an E.164 number
    to_name: str | None
    from_email: str | None
    from_name: str
    subject: str | None
    text: str
    html: str | None
    message_id: str | None  # <...@domain>, generated and stored before sending
    reply_to: str | None  # ar+<token>@domain: replies find their reminder
    unsubscribe_mailto: str | None
    unsubscribe_url: str | None
    envelope_from: str | None = None  # bounce+<token>@domain (VERP): bounces find their reminder
    date: datetime | None = None  # the Date header: when it was claimed, by arbot's clock
    status_callback: str | None = None  # where the provider reports delivery for this message


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the provider said. `transient` errors are retried; `permanent` ones end in failed."""

    # "sent"; "transient" (retry later); "permanent" (this message can never go);
    # "unknown" (handed over but no answer: may have gone, never retry blindly);
    # "outage" (our account or configuration: stop the run, leave the reminder approved)
    status: str
    provider_id: str | None = None
    error: str | None = None
    address_unusable: bool = False  # the address or number itself is bad (not just this message)
    opted_out: bool = False  # the recipient unsubscribed (e.g. Twilio 21610 after STOP)


class Sender(Protocol):
    """Sends messages of one channel; used as a context manager around a batch (one connection)."""

    def __enter__(self) -> Sender: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, message: Outgoing) -> Delivery: ...


class PaymentLinks(Protocol):
    """Creates a hosted payment link (the processor's; arbot never sees card data)."""

    def create(
        self, key: str, currency: str, amount_minor: int, description: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        """Returns (url, provider id). `key` makes a retry return the same link, never a second."""
        ...

    def deactivate(self, provider_id: str) -> None:
        """Nobody can pay through this link any more (its invoices were paid or changed)."""
        ...


@dataclass(frozen=True, slots=True)
class StripeEventIn:
    """A Stripe webhook event whose signature the adapter verified: the event's own fields and
    its `data.object` as Stripe sent it."""

    id: str
    type: str
    object: dict[str, Any]
    livemode: bool


# --- Tokens of a connected accounting source -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime  # when the access token stops working (UTC)
    tenant_id: str | None = None  # the QuickBooks realm, Xero tenant or FreshBooks account


class TokenStore(Protocol):
    def load(self, provider: str) -> Tokens | None: ...

    def save(self, provider: str, tokens: Tokens) -> None: ...
