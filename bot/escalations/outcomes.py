"""Resolving an escalation with an outcome a person picked (the Resolve form): what the outcome
means for what still holds the account back.

An outcome that settles a dispute (the invoice was paid, a credit note issued, or it was written
off) clears the dispute on the customer's open invoices, an event each. Any other outcome leaves
a dispute in place, so it is refused while one is: a dispute that needs nothing more is cleared
with *Resume sequence*, which says what it clears before it does.

An agreement (a promise to pay, a payment plan) holds the ladder back only once it is recorded
with its date or its instalments, so resolving as agreed is refused until it is: *Record promise*
and *Record payment plan* (which resolves the escalation itself) are the forms that record them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.escalations import plans, service

SETTLES_DISPUTE = ("paid", "credit_note", "written_off")  # the Resolve form's outcome values
PROMISE, PAYMENT_PLAN = "promise", "payment_plan"


def refusal(session: Session, escalation_id: int, choice: str) -> str | None:
    """Why the outcome `choice` cannot close this escalation as the account stands, in words for
    the form (None: it can, or it is resolved already, which saving it says)."""
    escalation = service.load(session, escalation_id)
    if escalation.state not in service.OPEN_STATES:
        return None
    invoices = service.open_invoices(session, escalation.customer_id)
    disputed = [i.number for i in invoices if i.disputed]
    if disputed and choice not in SETTLES_DISPUTE:
        named = ", ".join(disputed[:3]) + (f" and {len(disputed) - 3} more" if disputed[3:] else "")
        return (
            f"{named} {'is' if len(disputed) == 1 else 'are'} disputed. If that is settled, pick "
            "Paid, Credit note issued or Written off; to let reminders go on, use Resume sequence."
        )
    if choice == PROMISE and not any(i.promise_date for i in invoices):
        return (
            "No promise is recorded, so nothing would hold reminders back. Close this form and "
            "use Record promise with the date they gave, then resolve."
        )
    if choice == PAYMENT_PLAN and plans.active_plan(session, escalation.customer_id) is None:
        return (
            "No payment plan is recorded, so nothing would hold reminders back. Close this form "
            "and use Record payment plan: recording the plan resolves this."
        )
    return None


def resolve(
    session: Session, escalation_id: int, user: str, choice: str, outcome: str, now: datetime
) -> bool:
    """Resolve the escalation as `outcome` (the words shown; `choice` the form's value), clearing
    a dispute the outcome settles. False when it was resolved already (nothing changes);
    UserError when the outcome cannot close it (see `refusal`)."""
    if service.resolved(session, escalation_id) is not None:
        return False
    refused = refusal(session, escalation_id, choice)
    if refused is not None:
        raise UserError(f"Nothing changed: {refused}")
    if not service.resolve(session, escalation_id, user, outcome, now):
        return False  # resolved a moment ago by someone else
    if choice in SETTLES_DISPUTE:
        customer_id = service.load(session, escalation_id).customer_id
        for invoice in service.open_invoices(session, customer_id):
            if not invoice.disputed:
                continue
            invoice.disputed, invoice.dispute_reason, invoice.updated_at = False, None, now
            audit.record(
                session,
                now,
                "invoice.dispute_cleared",
                actor=user,
                customer_id=customer_id,
                invoice_id=invoice.id,
                payload={"number": invoice.number, "escalation": escalation_id, "outcome": outcome},
            )
    return True
