"""What the core hands the Slack side and what it asks of it: the plan's cards, payment reviews,
playbook proposals, escalation threads, installing into another workspace, and Slack's text escaping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from integrations.base.mrkdwn import Mrkdwn, escape, mention
from playbooks.render import SMS_LIMIT

# What the Edit form holds, and what an edit may be on the server too (bot/reminders/approvals.py).
EDIT_SUBJECT_LIMIT = 150
EDIT_BODY_LIMITS = {"email": 3000, "sms": SMS_LIMIT}
# The most reminders one Approve all button approves: each one's id and message version must fit
# in the button's value (2,000 characters); a tier with more waiting is approved in turns.
MOST_APPROVED_TOGETHER = 300
# Characters of the version of a reminder's message (bot/reminders/shown.py) that an Approve or
# Approve all button carries for each reminder: 36 bits, so a changed message keeps it ~never.
TEXT_VERSION_LENGTH = 6


def edit_body_limit(channel: str | None) -> int:
    """The most characters an edited message may have on this channel."""
    return EDIT_BODY_LIMITS.get(channel or "email", EDIT_BODY_LIMITS["email"])


__all__ = ["Mrkdwn", "escape", "mention"]  # Slack's text escaping, where the ports are


@dataclass(frozen=True, slots=True)
class Tag:
    """What a message is, named in its metadata (`kind`, e.g. "thread_note", and `key`, e.g. the
    note's id), so that a post after one whose outcome is unknown (its answer lost, a server
    error, the process stopped) finds the one Slack took instead of posting it twice."""

    kind: str
    key: str


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
    step_offset: int | None = None  # the step's day, counted from the due date
    step_position: int | None = None  # the step's place in its ladder, from 1
    copies: tuple[str, ...] = ()  # the invoice numbers whose PDF copies the email carries
    language: str | None = None  # the message's language (BCP 47 tag); None: English
    # Approved automatically because its step earned trust: since when, formatted for people.
    trusted_since: str | None = None
    # The version of the message it shows (bot/reminders/shown.py), carried by its Approve.
    text_version: str = ""


@dataclass(frozen=True, slots=True)
class TierLine:
    tier: str
    reminders: int
    escalations: int
    amount: str
    awaiting: int  # reminders still waiting for approval
    # What the tier's Approve all approves: the first of them by id (at most
    # MOST_APPROVED_TOGETHER), with the version of each one's message (bot/reminders/shown.py).
    covers: tuple[int, ...] = ()
    awaiting_amount: str = ""  # what they ask for, in total
    versions: tuple[str, ...] = ()  # of the messages of `covers`, in the same order


@dataclass(frozen=True, slots=True)
class HeldLine:
    """A customer held back today, and why (reason keys, bot/planning/guardrails.py)."""

    customer_name: str
    customer_id: str  # the ledger's id for it, as people type it in `/ar status`
    reasons: tuple[str, ...]
    invoices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EscalationLine:
    """An account the day's plan handed to a person: where its escalation is in Slack."""

    customer_name: str
    reason: str  # why (a reason key, or "step <key> (<n> days)")
    owner: str | None  # the Slack user or group it went to
    channel: str | None  # where its message is, once posted
    ts: str | None


@dataclass(frozen=True, slots=True)
class PlanSummary:
    day: date
    tiers: tuple[TierLine, ...]
    held: tuple[tuple[str, int], ...]  # (reason, customers)
    held_customers: tuple[HeldLine, ...] = ()  # who, when the plan kept their names
    escalations: tuple[EscalationLine, ...] = ()  # shown once, in their own channel
    # Steps approved automatically because they earned trust ("+7 polite reminder to standard
    # accounts, since 1 Dec 2026"), and trust taken back lately, with why: said in the header.
    trusted: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()
    # Sources whose sync fails, told in the finance channel: the ledger the plan came from may
    # be out of date ("QuickBooks has not synced since …: <why>").
    stale: tuple[str, ...] = ()


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
    decided: Mrkdwn | None = None  # "applied option 2 by <@U1>"


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


@dataclass(frozen=True, slots=True)
class GuardrailView:
    """A guardrail proposed after recurring errors: what happened, what approving would change,
    with Approve / Dismiss while it waits, and Release while an approved hold still holds."""

    proposal_id: int  # the buttons' value
    customer_name: str
    customer_id: str  # the ledger's id, as people type it in `/ar status`
    rule: str  # bounces | wrong_contact | correction | no_contact
    happened: str
    change: str
    status: str  # proposed | approved | dismissed
    decided_by: str | None = None  # a Slack user id
    why: str | None = None  # why it was dismissed, as typed
    holding: bool = False  # approved, and its hold still keeps the customer out of the plan
    released_by: str | None = None  # who released the hold


@runtime_checkable
class GuardrailPort(Protocol):
    """Posting a guardrail proposal to the finance channel and redrawing it after a decision."""

    def post_guardrail(self, channel: str, view: GuardrailView) -> tuple[str, str]:
        """Post it; returns (channel id, ts)."""
        ...

    def update_guardrail(self, channel: str, ts: str, view: GuardrailView) -> None: ...


class SlackPort(Protocol):
    """What the core asks of Slack; the implementation builds the Block Kit and calls the API."""

    def post_plan(
        self,
        channel: str,
        summary: PlanSummary,
        cards: list[ReminderCard],
        on_group: Callable[[str, PostedGroup], None],
        *,
        header: tuple[str, str] | None = None,
        on_header: Callable[[str, str], None] | None = None,
        workspace: str = "",
        header_maybe_posted: bool = False,
    ) -> PostedPlan:
        """Post the header (or update `header`, the (channel id, ts) of the one posted before),
        then the cards in as few messages as Block Kit allows, calling `on_header(channel_id,
        ts)` right after a new header is posted and `on_group(channel_id, group)` right after
        each message is posted. The header names its day and `workspace` (the team id; "" for
        the deployment's main one); with `header_maybe_posted` (an earlier post of the plan
        failed before its header's ts was kept), a header Slack already has for them is found
        and updated, and `on_header` called with it, instead of a second one posted."""
        ...

    def update_plan_header(self, channel: str, ts: str, summary: PlanSummary) -> None: ...

    def update_cards(self, channel: str, ts: str, cards: list[ReminderCard]) -> None: ...

    def post_text(
        self, channel: str, text: Mrkdwn, *, tag: Tag | None = None, maybe_posted: bool = False
    ) -> None:
        """A message to the channel (see integrations/base/mrkdwn.py for making its text),
        naming `tag` in its metadata; with `maybe_posted` (an earlier post of it failed without
        knowing whether Slack took it), nothing is posted when the channel's recent messages
        hold one naming `tag` (an install that may not read the channel posts it)."""
        ...

    def post_review(self, channel: str, view: ReviewView) -> tuple[str, str]:
        """Post a bank payment to place; returns (channel id, ts)."""
        ...

    def update_review(self, channel: str, ts: str, view: ReviewView) -> None: ...


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


@dataclass(frozen=True, slots=True)
class HistoryLine:
    at: datetime
    kind: str
    text: Mrkdwn


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    number: str
    balance: str
    days_overdue: int
    disputed: bool
    promise_date: date | None
    payment_link: str | None = None


@dataclass(frozen=True, slots=True)
class ContactLine:
    """A contact on file for the customer; `note` says when they cannot be written to."""

    name: str | None
    email: str | None
    phone: str | None
    role: str
    note: str | None = None  # e.g. "opted out of email"


@dataclass(frozen=True, slots=True)
class SentLine:
    """A message sent to the customer; its full text is shown on request (Action.ESC_SENT)."""

    reminder_id: int
    at: datetime  # in the business's timezone
    channel: str
    step: str  # in words
    subject: str | None


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
    resolution: str | None = None  # how it was closed, once resolved
    plan: tuple[str, ...] = ()  # the payment plan's progress: a summary, then one line each
    plan_running: bool = False  # the plan is active: it can be cancelled from the thread
    contacts: tuple[ContactLine, ...] = ()  # the one a reply goes to first
    sent: tuple[SentLine, ...] = ()  # the last messages sent, newest first


@runtime_checkable
class EscalationPort(Protocol):
    def post_escalation(
        self,
        channel: str,
        view: EscalationView,
        *,
        workspace: str = "",
        maybe_posted: bool = False,
    ) -> tuple[str, str]:
        """Post the parent message, naming the escalation and `workspace` (the team id; "" for
        the deployment's main one); returns (channel id, ts). With `maybe_posted` (an earlier
        post of it failed without knowing whether Slack took it), the one Slack already has is
        drawn again from `view` and returned instead of a second one posted."""
        ...

    def post_history(
        self, channel: str, thread_ts: str, view: EscalationView, *, maybe_posted: bool = False
    ) -> None:
        """The account's history, in the parent's thread, each of its messages naming the
        escalation and its part in its metadata; with `maybe_posted` (an earlier post of it
        failed without knowing whether Slack took it), the parts the thread already holds are
        not posted again."""
        ...

    def update_escalation(self, channel: str, ts: str, view: EscalationView) -> None: ...

    def post_in_thread(
        self,
        channel: str,
        thread_ts: str,
        text: Mrkdwn,
        *,
        tag: Tag | None = None,
        maybe_posted: bool = False,
    ) -> None:
        """A reply in the thread naming `tag` in its metadata; with `maybe_posted`, nothing is
        posted when the thread's replies hold one naming `tag` (an install that may not read
        the channel posts it)."""
        ...

    def post_text(
        self, channel: str, text: Mrkdwn, *, tag: Tag | None = None, maybe_posted: bool = False
    ) -> None: ...
