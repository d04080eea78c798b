"""The data model from DESIGN: typed SQLAlchemy 2.0 tables. Money is Amount, instants are UTCDateTime."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from bot.core.dbtypes import Amount, UTCDateTime
from bot.core.errors import ArbotError
from bot.core.vocabulary import (
    CHANNELS,
    CONTACT_ROLES,
    ESCALATION_STATES,
    INVOICE_STATUSES,
    PLAYBOOK_STATUSES,
    REMINDER_STATES,
    REVIEW_STATES,
    TIERS,
)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: Amount,
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
    }


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(_in("tier", TIERS), name="customer_tier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(256))
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    owner_slack_id: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    never_automate: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[datetime | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    crm_ref: Mapped[str | None] = mapped_column(String(160))  # "<crm>:<id>" once matched
    language: Mapped[str | None] = mapped_column(String(16))  # BCP 47 tag ("es"); None: English
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    contacts: Mapped[list[Contact]] = relationship(back_populates="customer")
    invoices: Mapped[list[Invoice]] = relationship(back_populates="customer")


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (CheckConstraint(_in("role", CONTACT_ROLES), name="contact_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    role: Mapped[str] = mapped_column(String(16), default="billing")
    timezone: Mapped[str | None] = mapped_column(String(64))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_consent_at: Mapped[datetime | None]
    sms_consent_source: Mapped[str | None] = mapped_column(String(256))
    email_opted_out_at: Mapped[datetime | None]
    sms_opted_out_at: Mapped[datetime | None]
    email_unusable_at: Mapped[datetime | None]
    sms_unusable_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(16))  # else the customer's
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("customer_id", "number"),
        CheckConstraint(_in("status", INVOICE_STATUSES), name="invoice_status"),
        CheckConstraint("balance >= 0 AND balance <= total", name="invoice_balance_range"),
        CheckConstraint("due_date >= issue_date", name="invoice_due_after_issue"),
        Index("ix_invoices_open_due", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up by customer through UNIQUE(customer_id, number), whose leading column it is
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    balance: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16), default="open")
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    promise_date: Mapped[date | None] = mapped_column(Date)
    payment_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_link: Mapped[str | None] = mapped_column(String(2048))
    # Where the invoice's PDF copy is fetched from, for a ledger CSV's `pdf_url` (http(s))
    document_url: Mapped[str | None] = mapped_column(String(2048))
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(back_populates="invoices")


class InvoiceDocument(Base):
    """An invoice's PDF copy as its source gave it, for one version of the invoice (a digest of
    its facts, bot/ledger/documents.py): a changed invoice has a new version and is fetched
    again, so a copy never outlives the facts it shows."""

    __tablename__ = "invoice_documents"
    __table_args__ = (UniqueConstraint("invoice_id", "version", name="invoice_document_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    version: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(32))  # "quickbooks", "pdf_url", "folder", ...
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime]


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    received_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(256))
    payer: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"
    __table_args__ = (UniqueConstraint("payment_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up by payment through UNIQUE(payment_id, invoice_id), whose leading column it is
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal]


class PaymentLink(Base):
    """A processor payment link for exactly one set of invoices at their balances; reused until
    they are paid or change (arbot never handles card data or moves money)."""

    __tablename__ = "payment_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    provider_id: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal]
    invoice_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]  # deactivated at the processor: its invoices changed


class PlaybookVersion(Base):
    __tablename__ = "playbook_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(_in("status", PLAYBOOK_STATUSES), name="playbook_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_versions.id"))
    rationale: Mapped[str | None] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(String(64), default="system")
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint(_in("state", REMINDER_STATES), name="reminder_state"),
        CheckConstraint(_in("channel", CHANNELS), name="reminder_channel"),
        Index("ix_reminders_state_send_after", "state", "send_after"),
        # a day's plan and its header's counts; what of it is not in Slack yet
        Index("ix_reminders_plan_date", "plan_date", "slack_ts"),
        # a message's cards; partial, so that a plan's reminders cost it nothing until posted
        Index(
            "ix_reminders_slack_message",
            "slack_channel",
            "slack_ts",
            sqlite_where=text("slack_ts IS NOT NULL"),
            postgresql_where=text("slack_ts IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str | None] = mapped_column(String(8))  # None for an escalation
    plan_date: Mapped[date] = mapped_column(Date)
    step_key: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16), default="remind")
    tone: Mapped[str | None] = mapped_column(String(32))
    playbook_version_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_versions.id"))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    send_after: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(32))
    approved_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(998))
    reply_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(16))  # the message's; None: English
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReminderInvoice(Base):
    """Which invoices one reminder covers (one message per customer per day, never five)."""

    __tablename__ = "reminder_invoices"

    __table_args__ = (
        # A step is done once per invoice, ever (a new due date starts its ladder again).
        UniqueConstraint("invoice_id", "step_key", "due_date", name="uq_step_once_per_invoice"),
    )

    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    step_key: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[date] = mapped_column(Date)


class ReminderAttachment(Base):
    """An invoice whose PDF copy goes with a reminder's email: its step or the setting asked
    for it, or the person who wrote a reply from a thread ticked it."""

    __tablename__ = "reminder_attachments"

    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)


class Event(Base):
    """The append-only audit log. Rows are inserted, never updated or deleted."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_at", "customer_id", "at"),
        # Partial: most events are written in bulk with one of these empty (a plan's have no
        # invoice, an import's no reminder), and every query on them asks for a value.
        Index(
            "ix_events_invoice_id",
            "invoice_id",
            sqlite_where=text("invoice_id IS NOT NULL"),
            postgresql_where=text("invoice_id IS NOT NULL"),
        ),
        Index(
            "ix_events_reminder_id",
            "reminder_id",
            sqlite_where=text("reminder_id IS NOT NULL"),
            postgresql_where=text("reminder_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # a Slack user id, or "system"
    kind: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (CheckConstraint(_in("channel", CHANNELS), name="inbound_channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    received_at: Mapped[datetime]
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))
    raw: Mapped[str] = mapped_column(Text)
    # The message exactly as it came, when `raw` cannot hold it so (a NUL, bytes not UTF-8): `raw`
    # then holds it with those characters replaced by U+FFFD.
    raw_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    # SHA-256 of the message as it came (hex): a message with no Message-ID delivered twice is
    # recognised by it (bot.replies.storable.raw_digest).
    raw_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    matched_by: Mapped[str | None] = mapped_column(String(32))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None]
    promise_date: Mapped[date | None] = mapped_column(Date)
    # Matched no customer and the finance channel has not been told yet (the sweep retries);
    # slack_claimed_at: a process is posting it now (another may take over after a while).
    awaiting_slack: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    slack_claimed_at: Mapped[datetime | None]


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (CheckConstraint(_in("state", ESCALATION_STATES), name="escalation_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")
    owner_slack_id: Mapped[str | None] = mapped_column(String(32))
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))
    # a process is posting it to Slack now (bot/escalations/posting.py: post_new)
    slack_claimed_at: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    raised_at: Mapped[datetime | None]  # when the unclaimed sweep last raised it again


class PaymentPlan(Base):
    """Instalments agreed with a customer for some of its invoices (bot/escalations/plans.py):
    the invoices' ladder waits while the instalments arrive on time."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        CheckConstraint(
            "state IN ('active', 'completed', 'missed', 'cancelled')", name="payment_plan_state"
        ),
        Index(  # one running plan per customer, even when two forms are submitted at once
            "uq_payment_plans_one_active",
            "customer_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    invoice_ids: Mapped[list[int]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]  # the invoices' balance when the plan was agreed
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class PlanInstalment(Base):
    __tablename__ = "plan_instalments"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="plan_instalment_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in date order
    due_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal]
    paid_on: Mapped[date | None] = mapped_column(Date)  # the day payments were seen to cover it
    missed_at: Mapped[datetime | None]


class ThreadReply(Base):
    """An email a person wrote from an escalation's thread: the message is its reminder (the
    outbox sends it once); this says what it answers."""

    __tablename__ = "thread_replies"

    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    written_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class EditExample(Base):
    """An approver's edit of a draft: the learning loop's examples."""

    __tablename__ = "edit_examples"

    id: Mapped[int] = mapped_column(primary_key=True)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id"))
    tier: Mapped[str] = mapped_column(String(16))
    step_key: Mapped[str] = mapped_column(String(64))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    editor: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class StripeEvent(Base):
    """A Stripe webhook event already handled: Stripe retries, and a repeat must change nothing."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class SourceToken(Base):
    """OAuth tokens for a ledger source (QuickBooks, Xero), encrypted at rest."""

    __tablename__ = "source_tokens"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(128))  # QuickBooks realm, Xero tenant
    ciphertext: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class MailboxGrant(Base):
    """The OAuth grant of the mailbox arbot sends and reads as (Gmail, Microsoft 365), sealed;
    `refused_at` and `refusal` once the provider refused it, until `arbot connect` again."""

    __tablename__ = "mailbox_grants"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    refused_at: Mapped[datetime | None]
    refusal: Mapped[str | None] = mapped_column(Text)


class ControlHoldout(Base):
    """The randomized holdout's one row: the installation's salt (drawn once), the share of
    ARBOT_CONTROL_SHARE in force and since when (bot.planning.control)."""

    __tablename__ = "control_holdout"
    __table_args__ = (CheckConstraint("id = 1", name="control_holdout_one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    share: Mapped[Decimal]
    share_since: Mapped[datetime]
    created_at: Mapped[datetime]


class ControlAssignment(Base):
    """A customer's group in the holdout, never changed once written: `control` (observed only)
    or `followed`; when, and the share in force then."""

    __tablename__ = "control_assignments"
    __table_args__ = (
        CheckConstraint("grp IN ('control', 'followed')", name="control_assignment_group"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    grp: Mapped[str] = mapped_column(String(16), index=True)
    assigned_at: Mapped[datetime]
    share: Mapped[Decimal]


class SyncState(Base):
    """Where the next incremental sync of a source starts, and how the last one went."""

    __tablename__ = "sync_state"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LedgerFileImport(Base):
    """The last ledger file imported from a source (bot/ledger/file_imports.py): its bytes'
    digest, the settings it was read with, and the state of the ledger right after its import.
    The same file again, read the same way into a ledger nothing else has changed since, has
    nothing to write and is not read again."""

    __tablename__ = "ledger_file_imports"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(256))  # the file's name
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of its bytes, hex
    settings: Mapped[str] = mapped_column(Text)
    ledger_state: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime]


class CrmNote(Base):
    """A note to write on a customer's CRM company (a reminder sent, an account handed to a
    person), one per event and CRM: `pending` until the sweep claims it (`writing`, committed
    before the CRM is called), then `written` with the CRM's note id; `pending` again with a
    later `next_try_at` after a 429 or server error; `failed` when the CRM refuses it or after
    the last try; `unknown` when a claim was never finished (never written a second time)."""

    __tablename__ = "crm_notes"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="crm_note_once"),
        CheckConstraint(
            "state IN ('pending', 'writing', 'written', 'failed', 'unknown')", name="crm_note_state"
        ),
        Index("ix_crm_notes_due", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # "hubspot", "pipedrive"
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    crm_id: Mapped[str] = mapped_column(String(64))  # the CRM's company / organization id
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    written_at: Mapped[datetime | None]
    crm_note_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class PaymentReview(Base):
    """A bank payment that did not match exactly one way: a person picks, in Slack."""

    __tablename__ = "payment_reviews"
    __table_args__ = (CheckConstraint(_in("state", REVIEW_STATES), name="review_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="open")
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    # a process is posting it to Slack now (bot/payments/reviews.py: post_open)
    slack_claimed_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ScheduledRun(Base):
    """A once-a-day job (the morning plan, the weekly review) for a date: at most one row, so a
    restart, a missed morning caught up or a second replica can never run it twice."""

    __tablename__ = "scheduled_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    instance: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class PlanPost(Base):
    """A day's plan in the finance channel: where its header is, who is posting it now, and what
    went wrong while Slack refused it (bot/planning/posting.py). One row per day."""

    __tablename__ = "plan_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    header_ts: Mapped[str | None] = mapped_column(String(32))
    held: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[reason, customers], ...]
    slack_claimed_at: Mapped[datetime | None]  # a process is posting it now
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since the last success
    last_error: Mapped[str | None] = mapped_column(Text)
    late_since: Mapped[datetime | None]  # the first refusal since the plan was last complete
    late_cards: Mapped[int] = mapped_column(Integer, default=0)  # cards missing at that refusal
    next_try_at: Mapped[datetime | None]  # the sweep's next attempt (backoff)
    late_notice: Mapped[str | None] = mapped_column(Text)  # owed to the finance channel
    posted_at: Mapped[datetime | None]  # when the last missing part reached Slack


class SlackRetry(Base):
    """Something Slack refused that must still reach it: a redraw of a posted message
    (`redraw`: the plan's cards at channel/ts) or an escalation's history in its thread
    (`history`). The sweep retries each with backoff until Slack takes it, then deletes the row."""

    __tablename__ = "slack_retries"
    __table_args__ = (UniqueConstraint("kind", "channel", "ts", name="slack_retry_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None]  # None: at the next sweep
    last_error: Mapped[str | None] = mapped_column(Text)


class MessageVersion(Base):
    """A posted plan message's versions (bot/planning/redraws.py), so a redraw never goes back in
    time: `wanted` counts the redraws asked for, `drawn` is the newest one claimed for drawing
    (compare-and-set, before chat.update), and `drawing_since` is the lease of the one worker
    drawing it now; the others only raise `wanted`, and that worker draws again."""

    __tablename__ = "message_versions"
    __table_args__ = (UniqueConstraint("channel", "ts", name="message_version_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    wanted: Mapped[int] = mapped_column(Integer, default=0)
    drawn: Mapped[int] = mapped_column(Integer, default=0)
    drawing_since: Mapped[datetime | None]


class SchedulerLease(Base):
    """Which replica runs the scheduled jobs on PostgreSQL: one row its holder renews (`beat`),
    and that another replica takes over (`term` + 1) once it has seen it unchanged for a whole
    lease (scheduler/leader.py). `holder` is empty once a leader has let it go."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    term: Mapped[int] = mapped_column(BigInteger)
    beat: Mapped[int] = mapped_column(BigInteger)
    lease_ms: Mapped[int]  # how long its holder may go without renewing before it is taken


class SlackRevocation(Base):
    """Slack said a bot token of ours is dead (`app_uninstalled`, or `tokens_revoked` naming the
    bot): Slack is not called with it again. Kept by a digest of the token, so the new token a
    reinstall brings is not refused (bot.workspaces.access)."""

    __tablename__ = "slack_revocations"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # app_uninstalled | tokens_revoked
    at: Mapped[datetime]


class Workspace(Base):
    """A Slack workspace installed through /slack/install: one business. Its own data lives
    apart (bot.workspaces.registry); this row, in the main database, holds who it is, the channel chosen
    at install, and its settings, sealed (they hold passwords and API keys)."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_name: Mapped[str] = mapped_column(String(200))
    finance_channel: Mapped[str | None] = mapped_column(String(32))
    settings_sealed: Mapped[str | None] = mapped_column(Text)
    installed_by: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime]
    uninstalled_at: Mapped[datetime | None]


# slack_sdk's SQLAlchemy installation and OAuth state stores run their own statements against
# these tables (by these names and columns); they are declared here so our migrations make and
# check them. Token columns are Text: the stores are handed sealed tokens
# (integrations.slack_install; bot.workspaces.installs reads the bot token back), longer than the
# plain ones. Their instants are naive UTC, as slack_sdk writes them.
def _slack_bot_columns() -> list[Column[Any]]:
    """What both of slack_sdk's tables keep of an installed bot (new Column objects each call)."""
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", Text),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", Text),
        Column("bot_token_expires_at", DateTime),
        Column("is_enterprise_install", Boolean, nullable=False),
        Column("installed_at", DateTime, nullable=False),
    ]


slack_installations = Table(
    "slack_installations",
    Base.metadata,
    *_slack_bot_columns(),
    Column("enterprise_url", String(200)),
    Column("user_id", String(32), nullable=False),
    Column("user_token", Text),
    Column("user_scopes", String(1000)),
    Column("user_refresh_token", Text),
    Column("user_token_expires_at", DateTime),
    Column("incoming_webhook_url", Text),
    Column("incoming_webhook_channel", String(200)),
    Column("incoming_webhook_channel_id", String(200)),
    Column("incoming_webhook_configuration_url", String(200)),
    Column("token_type", String(32)),
    Index(
        "slack_installations_idx",
        "client_id",
        "enterprise_id",
        "team_id",
        "user_id",
        "installed_at",
    ),
)
slack_bots = Table(
    "slack_bots",
    Base.metadata,
    *_slack_bot_columns(),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)
slack_oauth_states = Table(
    "slack_oauth_states",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)


class AuditLogIsAppendOnly(ArbotError):
    pass


@event.listens_for(Event, "before_update")
def _refuse_event_update(mapper: Mapper[Event], connection: Any, target: Event) -> None:
    raise AuditLogIsAppendOnly("events are append-only: an audit row cannot be changed")


@event.listens_for(Event, "before_delete")
def _refuse_event_delete(mapper: Mapper[Event], connection: Any, target: Event) -> None:
    raise AuditLogIsAppendOnly("events are append-only: an audit row cannot be deleted")
