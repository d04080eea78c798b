"""The closed vocabularies of the data model, each defined once: tiers, channels, states, statuses.

Each is a `StrEnum`: a member is the very string stored in the database (`ReminderState.SENT ==
"sent"`), so columns, payloads and check constraints keep their plain values. The tuples beside
them name the groups the code asks about (which reminders are still waiting, which count as a
touch); models.py builds its check constraints from the same tuples.
"""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    STRATEGIC = "strategic"
    STANDARD = "standard"
    TRANSACTIONAL = "transactional"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class ContactRole(StrEnum):
    BILLING = "billing"
    PRIMARY = "primary"
    EXECUTIVE = "executive"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    WRITTEN_OFF = "written_off"


class ReminderAction(StrEnum):
    REMIND = "remind"  # a message to the customer
    ESCALATE = "escalate"  # a step for a person: never sent, stored `cancelled` (`escalated`)


class ReminderState(StrEnum):
    """DESIGN's state machine; bot/reminders/state.py holds the moves allowed between them."""

    PLANNED = "planned"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"


class EscalationState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class PlaybookStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    RETIRED = "retired"


class ReviewState(StrEnum):
    """A bank payment under review (PaymentReview.state)."""

    OPEN = "open"
    APPLIED = "applied"
    UNMATCHED = "unmatched"


class Resolution(StrEnum):
    """What may count as resolving an invoice besides its payment (ARBOT_RESOLVED_WHEN)."""

    PAYMENT_PLAN = "payment_plan"
    PROMISE = "promise"  # a promise to pay whose date has not passed


# Who approved a reminder the playbook lets go without a person (`approved_by`): nothing to undo.
AUTO_APPROVER = "playbook"
# Who approved a reminder of a step that earned trust (bot/learning/trust.py): a person approved
# the playbook version that made the step auto-approve; the reminder can still be undone.
TRUSTED_APPROVER = "arbot (trusted step)"
# The step of a reminder a person wrote from an escalation's thread (bot/escalations/reply.py).
THREAD_REPLY = "thread_reply"

TIERS: tuple[Tier, ...] = tuple(Tier)  # in this order wherever tiers are listed
CHANNELS: tuple[Channel, ...] = tuple(Channel)
CONTACT_ROLES: tuple[ContactRole, ...] = tuple(ContactRole)
INVOICE_STATUSES: tuple[InvoiceStatus, ...] = tuple(InvoiceStatus)
REMINDER_STATES: tuple[ReminderState, ...] = tuple(ReminderState)
ESCALATION_STATES: tuple[EscalationState, ...] = tuple(EscalationState)
PLAYBOOK_STATUSES: tuple[PlaybookStatus, ...] = tuple(PlaybookStatus)
REVIEW_STATES: tuple[ReviewState, ...] = tuple(ReviewState)
RESOLUTIONS: tuple[Resolution, ...] = tuple(Resolution)

# Waiting: not sent and not yet being sent, so it can still be stopped (paid, paused, opted out).
WAITING: tuple[ReminderState, ...] = (ReminderState.PLANNED, ReminderState.APPROVED)
# Waiting or sending: the customer already has a message on its way; the planner plans no other.
WAITING_OR_SENDING: tuple[ReminderState, ...] = (*WAITING, ReminderState.SENDING)
# Touched: the message went out, or may have (unknown); it counts as a touch of the customer.
TOUCHED: tuple[ReminderState, ...] = (
    ReminderState.SENDING,
    ReminderState.SENT,
    ReminderState.UNKNOWN,
)
