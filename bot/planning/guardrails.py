"""Why a reminder is held back. Each reason is machine-readable and shown in the plan.

Invoice-level: the invoice is settled or a person is handling it. Customer-level: the account is
paused, already has a reminder on its way, has a bank payment waiting for a person to place it,
was touched too recently, or cannot be reached safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from bot.core.vocabulary import RESOLUTIONS
from bot.planning.facts import ContactFacts, CustomerFacts, History, InvoiceFacts

# Invoice-level reasons
PAID = "paid"  # balance 0
BELOW_WRITE_OFF = "below_write_off"  # what is left is under the write-off threshold
DISPUTED = "disputed"
PROMISED = "promised"  # promise-to-pay date not yet passed
PAYMENT_PLAN = "payment_plan"
# Customer-level reasons
PAUSED = "paused"
ALREADY_TODAY = "already_planned_today"  # one message per customer per day, even on a re-run
PENDING_APPROVAL = "pending_approval"  # a reminder is already planned, approved or sending
ESCALATED = "escalated"  # a person has the account (open escalation)
PAYMENT_IN_REVIEW = "payment_in_review"  # a bank payment that may be theirs waits for a person
FREQUENCY_CAP = "frequency_cap"
NO_CONTACT = "no_contact"
OPTED_OUT = "opted_out"
NO_SMS_CONSENT = "no_sms_consent"
UNKNOWN_TIMEZONE = "unknown_timezone"
NO_SEND_WINDOW = "no_send_window"
TEMPLATE_ERROR = "template_error"
PAYMENT_LINK_ERROR = "payment_link_error"


def invoice_hold(
    invoice: InvoiceFacts,
    day: date,
    write_off: dict[str, Decimal],
    resolved_when: frozenset[str] = frozenset(RESOLUTIONS),
) -> str | None:
    """Why this invoice needs no reminder today, or None. Paid in full, a balance under the
    currency's write-off threshold and a dispute always stop it; a recorded payment plan and a
    promise to pay not yet due stop it when `resolved_when` says so (both by default)."""
    if invoice.balance <= 0:
        return PAID
    threshold = write_off.get(invoice.currency)
    if threshold is not None and invoice.balance < threshold:
        return BELOW_WRITE_OFF
    if invoice.disputed:
        return DISPUTED
    if invoice.payment_plan and "payment_plan" in resolved_when:
        return PAYMENT_PLAN
    if (
        invoice.promise_date is not None
        and invoice.promise_date >= day
        and "promise" in resolved_when
    ):
        return PROMISED
    return None


def customer_hold(customer: CustomerFacts, history: History, now: datetime) -> str | None:
    if customer.id in history.pending:
        return PENDING_APPROVAL
    if customer.paused_until is not None and customer.paused_until > now:
        return PAUSED
    if customer.id in history.guarded:  # an approved guardrail (bot/learning/guardrails.py)
        return history.guarded[customer.id]
    if customer.id in history.escalated:
        return ESCALATED
    if customer.id in history.in_review:
        return PAYMENT_IN_REVIEW
    return None


def too_soon(customer: CustomerFacts, history: History, now: datetime, cap: timedelta) -> bool:
    """At most one touch per customer in any `cap` (3 days by default), counted across channels."""
    last = history.last_touch.get(customer.id)
    return last is not None and now - last < cap


def reachable_contacts(customer: CustomerFacts) -> list[ContactFacts]:
    """Billing contacts, else primary ones; an executive is never chased unless marked billing."""
    billing = [c for c in customer.contacts if c.role == "billing"]
    return billing or [c for c in customer.contacts if c.role == "primary"]


@dataclass(frozen=True)
class Route:
    contact: ContactFacts | None
    channel: str | None
    hold: str | None  # why no contact or channel could be used


def choose_route(customer: CustomerFacts, channels: tuple[str, ...]) -> Route:
    """The first channel of the step, in its order of preference, that some contact can take."""
    contacts = reachable_contacts(customer)
    for channel in channels:
        for contact in contacts:
            if _usable(contact, channel):
                return Route(contact, channel, None)
    return Route(None, None, _why_unreachable(contacts, channels))


def _usable(contact: ContactFacts, channel: str) -> bool:
    if channel == "email":
        return bool(contact.email) and not contact.email_blocked
    return bool(contact.phone) and contact.sms_consent and not contact.sms_blocked


def _why_unreachable(contacts: list[ContactFacts], channels: tuple[str, ...]) -> str:
    has_address = [
        c for c in contacts for ch in channels if (c.email if ch == "email" else c.phone)
    ]
    if not has_address:
        return NO_CONTACT
    blocked = all(
        (c.email_blocked if ch == "email" else c.sms_blocked)
        for c in contacts
        for ch in channels
        if (c.email if ch == "email" else c.phone)
    )
    if blocked:
        return OPTED_OUT
    return NO_SMS_CONSENT
