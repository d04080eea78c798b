"""`/ar assign`: a person says whose a message that matched nobody is; from then on it is that
customer's reply."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import InboundMessage
from bot.ledger.customers import find_customer
from bot.replies.email import human_reply
from bot.replies.match import InboundResult, ReplyRules, contact_for
from integrations.base.inbound import Classifier


def assign(
    session: Session,
    inbound_id: int,
    query: str,
    user: str,
    now: datetime,
    today: date,
    rules: ReplyRules,
    classifier: Classifier,
) -> InboundResult:
    """A person says whose message it is: from then on it is that customer's reply. The text is
    read inside this transaction, so `classifier` must be a quick one (the rules, not an LLM)."""
    stored = session.get(InboundMessage, inbound_id)
    if stored is None:
        raise UserError(f"there is no inbound message {inbound_id}")
    if stored.customer_id is not None:
        raise UserError(f"message {inbound_id} already belongs to a customer")
    customer = find_customer(session, query)
    stored.customer_id, stored.matched_by = customer.id, f"assigned by {user}"[:32]
    stored.awaiting_slack = False
    audit.record(
        session,
        now,
        "reply.assigned",
        actor=user,
        customer_id=customer.id,
        payload={"inbound": inbound_id},
    )
    contact = contact_for(session, customer.id, None)
    triage = classifier.classify(stored.text, today)
    return human_reply(session, stored, customer.id, contact, now, rules, triage)
