"""Which customers an approved guardrail holds back today, read from the audit log.

A guardrail (bot/learning/guardrails.py) lives in the append-only Event log: `guardrail.proposed`
carries what it found and what it would change; `guardrail.approved`, `guardrail.dismissed` and
`guardrail.released` name its proposal's event id. An approved guardrail with a hold keeps the
customer out of the plan (reason keys below, shown in the plan header's held list) until a person
releases it in Slack or, for a hold that waits for a new billing contact, until the customer has
a usable contact added or changed after the approval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Event

PROPOSED = "guardrail.proposed"
APPROVED = "guardrail.approved"
DISMISSED = "guardrail.dismissed"
RELEASED = "guardrail.released"
POSTED = "guardrail.posted"
DECISIONS = (APPROVED, DISMISSED)

# Why the plan holds a customer back after an approved guardrail (bot/planning/guardrails.py).
HOLD_BOUNCES = "guardrail_bounces"  # emails to the customer's domain bounce: new contact asked
HOLD_WRONG_CONTACT = "guardrail_wrong_contact"  # replies say we write to the wrong person
HOLD_CORRECTION = "guardrail_correction"  # an invoice was corrected after a reminder: review
HOLD_REASONS = (HOLD_BOUNCES, HOLD_WRONG_CONTACT, HOLD_CORRECTION)


def proposal_of(event: Event) -> int | None:
    """The proposal (its event id) a decision, release or posting event is about."""
    value = event.payload.get("proposal")
    return int(value) if isinstance(value, int) else None


def active_holds(session: Session) -> dict[int, str]:
    """Customer id -> the hold reason of an approved guardrail still holding it."""
    return {customer_id: reason for customer_id, reason in holding(session).values()}


def holding(session: Session) -> dict[int, tuple[int, str]]:
    """Proposal id -> (customer id, hold reason) of each approved guardrail still holding."""
    proposals: dict[int, Event] = {}
    approvals: dict[int, Event] = {}
    released: set[int] = set()
    for event in session.scalars(
        select(Event).where(Event.kind.in_((PROPOSED, APPROVED, RELEASED))).order_by(Event.id)
    ):
        if event.kind == PROPOSED:
            if event.payload.get("hold"):
                proposals[event.id] = event
            continue
        about = proposal_of(event)
        if about is None:
            continue
        if event.kind == APPROVED:
            approvals[about] = event
        else:
            released.add(about)
    holds: dict[int, tuple[int, str]] = {}
    for proposal_id, approval in approvals.items():
        proposed = proposals.get(proposal_id)
        if proposed is None or proposal_id in released or proposed.customer_id is None:
            continue
        if proposed.payload.get("until_contact") and new_contact_since(
            session, proposed.customer_id, approval.at
        ):
            continue
        holds[proposal_id] = (proposed.customer_id, str(proposed.payload["hold"]))
    return holds


def new_contact_since(session: Session, customer_id: int, since: datetime) -> bool:
    """Whether the customer has a billing or primary contact, added or changed after `since`,
    that can be written to (an email neither opted out nor unusable, or a phone with consent)."""
    usable_email = (
        Contact.email.is_not(None)
        & (Contact.email != "")
        & Contact.email_opted_out_at.is_(None)
        & Contact.email_unusable_at.is_(None)
    )
    usable_phone = (
        Contact.phone.is_not(None)
        & Contact.sms_consent.is_(True)
        & Contact.sms_opted_out_at.is_(None)
        & Contact.sms_unusable_at.is_(None)
    )
    found = session.scalar(
        select(Contact.id)
        .where(
            Contact.customer_id == customer_id,
            Contact.role.in_(("billing", "primary")),
            Contact.updated_at > since,
            or_(usable_email, usable_phone),
        )
        .limit(1)
    )
    return found is not None


def payload_text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""
