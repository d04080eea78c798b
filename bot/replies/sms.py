"""A text from a number: STOP and its synonyms opt the number out of SMS (carriers require it),
START opts back in, HELP answers who we are; anything else is a reply from a person, matched to
its customer by the sender's number.

An opt-out reaches every contact at the number, whoever's they are and however it is worded:
"STOP" and "Please stop texting me" stop the same texts (RULES A7, B2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, InboundMessage
from bot.core.vocabulary import WAITING
from bot.ledger.accounts import cancel_waiting, waiting_of
from bot.reminders import state
from bot.replies.bounces import opt_out
from bot.replies.email import human_reply
from bot.replies.match import InboundResult, ReplyRules
from bot.replies.storable import storable_raw, storable_sms
from integrations.base.inbound import Triage

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}


def sms_needs_triage(body: str) -> bool:
    """Whether the text is more than a keyword (STOP, START, HELP and their synonyms)."""
    return keyword(body) not in STOP_WORDS | START_WORDS | HELP_WORDS


def handle_sms(
    session: Session,
    sender: str,
    body: str,
    provider_id: str | None,
    now: datetime,
    rules: ReplyRules,
    triage: Triage | None,
    business_name: str,
) -> InboundResult:
    """Store the text and act on it. `triage` is its label, worked out beforehand (from the
    storable body); it may be None only when `sms_needs_triage(body)` is false."""
    sender, provider_id = storable_sms(sender, provider_id)
    seen = _seen(session, provider_id)
    if seen is not None:  # Twilio retried the webhook: once only
        return InboundResult(seen, "duplicate")
    stored, contacts = _stored(session, sender, body, provider_id, now)
    customer_id = stored.customer_id
    word = keyword(stored.text)
    if word in STOP_WORDS:
        _opt_out_number(session, contacts, now, f"texted {word}")
        return InboundResult(
            stored.id,
            "opt_out",
            customer_id,
            answer=f"{business_name}: you will get no more texts from us. Reply START to undo.",
        )
    if word in START_WORDS:
        for contact in contacts:
            if contact.sms_opted_out_at is not None:
                contact.sms_opted_out_at, contact.updated_at = None, now
                audit.record(
                    session,
                    now,
                    "contact.opted_in",
                    customer_id=contact.customer_id,
                    payload={"channel": "sms", "how": f"texted {word}", "contact": contact.id},
                )
        return InboundResult(
            stored.id,
            "opt_in",
            customer_id,
            answer=f"{business_name}: texts are on again. Reply STOP to stop them.",
        )
    if word in HELP_WORDS:
        return InboundResult(
            stored.id,
            "help",
            customer_id,
            answer=(
                f"{business_name} accounts team: payment reminders about your invoices. "
                "Reply STOP to stop texts."
            ),
        )
    asked_to_stop = triage is not None and triage.label == "opt_out"
    if customer_id is None:
        # Several customers' contacts share the number: a person says whose text it is, but
        # an opt-out is for the number and needs nobody to decide.
        if asked_to_stop:
            _opt_out_number(session, contacts, now, "asked in a reply")
        audit.record(session, now, "reply.unmatched", payload={"inbound": stored.id, "sms": sender})
        stored.awaiting_slack = True
        return InboundResult(stored.id, "unmatched")
    if triage is None:
        raise ValueError("a reply from a person needs its triage: classify it before handle_sms")
    # No one contact is the writer: an opt-out is for every contact at the number, below.
    result = human_reply(session, stored, customer_id, None, now, rules, triage)
    if asked_to_stop:
        _opt_out_number(session, contacts, now, "asked in a reply")
    return result


def record_opt_out(
    session: Session,
    sender: str,
    body: str,
    provider_id: str | None,
    now: datetime,
    triage: Triage | None,
) -> InboundResult:
    """Store a text that asks to stop (a STOP keyword, or `triage` read it as an opt-out) and opt
    the number out, and nothing else: no escalation, no answer. For a workspace that uninstalled
    arbot (bot/replies/uninstalled.py), whose customers' opt-outs must hold after a reinstall."""
    sender, provider_id = storable_sms(sender, provider_id)
    seen = _seen(session, provider_id)
    if seen is not None:
        return InboundResult(seen, "duplicate")
    stored, contacts = _stored(session, sender, body, provider_id, now)
    word = keyword(stored.text)
    if triage is not None:
        stored.label, stored.confidence = triage.label, triage.confidence
    _opt_out_number(
        session, contacts, now, f"texted {word}" if word in STOP_WORDS else "asked in a reply"
    )
    return InboundResult(stored.id, "opt_out", stored.customer_id, stored.label)


def keyword(text: str) -> str:
    """The text read as a keyword (STOP, START, HELP and their synonyms are compared to it)."""
    return text.strip().upper().rstrip(".!")


def _seen(session: Session, provider_id: str | None) -> int | None:
    """The stored text with this MessageSid, if Twilio delivered it before."""
    if not provider_id:
        return None
    return session.scalar(
        select(InboundMessage.id).where(
            InboundMessage.channel == "sms", InboundMessage.message_id == provider_id
        )
    )


def _stored(
    session: Session, sender: str, body: str, provider_id: str | None, now: datetime
) -> tuple[InboundMessage, list[Contact]]:
    """The text stored, matched to its customer when every contact at the number is one
    customer's, and those contacts."""
    raw, raw_bytes = storable_raw(body)
    contacts = list(
        session.scalars(select(Contact).where(Contact.phone == sender).order_by(Contact.id))
    )
    customer_ids = {c.customer_id for c in contacts}
    customer_id = customer_ids.pop() if len(customer_ids) == 1 else None
    stored = InboundMessage(
        channel="sms",
        received_at=now,
        sender=sender,
        subject=None,
        message_id=provider_id,
        raw=raw,
        raw_bytes=raw_bytes,
        text=raw.strip(),
        customer_id=customer_id,
        matched_by="sender" if customer_id else None,
        automatic=False,
    )
    session.add(stored)
    session.flush()
    return stored, contacts


def _opt_out_number(session: Session, contacts: list[Contact], now: datetime, how: str) -> None:
    """Opt every contact at the number out of texts, after cancelling what waits for their
    customers: the reminders before the contacts, as a reply by email does and as the send
    worker's results take their locks on PostgreSQL (a text, then its contact), the contacts in
    id order. Each customer's cancel locks its reminders in turn, which for a number several
    customers share would take them out of (send_after, id) order and deadlock with the send
    worker storing them: all of them are locked first, in one ordered pass."""
    customer_ids = sorted({contact.customer_id for contact in contacts})
    state.lock_cancellable(session, [waiting_of(one) for one in customer_ids], WAITING)
    for customer_id in customer_ids:
        cancel_waiting(session, customer_id, "opted_out", now)
    for contact in contacts:
        opt_out(session, contact, "sms", contact.customer_id, now, how)
