"""Whose an inbound message is, and the shapes every kind of inbound message shares.

Email is matched by the signed Reply-To token, else by In-Reply-To/References against the
Message-IDs arbot sent, else by the sender's address; SMS by the sender's number
(bot/replies/sms.py). What matches nothing is kept and shown to a person to assign
(bot/replies/assign.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, InboundMessage, Reminder
from bot.core.tokens import reminder_ids
from bot.ledger.former_addresses import former_address
from bot.replies.storable import raw_digest, storable_raw

if TYPE_CHECKING:
    from bot.core.settings import Settings
    from integrations.base.inbound import InboundEmail

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MATCHED_IDS = 200


@dataclass(frozen=True, slots=True)
class ReplyRules:
    secret_key: str
    grace_days: int = 2
    min_confidence: float = 0.6
    routes: dict[str, str] = field(default_factory=dict)
    # The business's timezone (ARBOT_TIMEZONE): a promise holds through its date plus grace there.
    timezone: str = "UTC"

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyRules:
        return cls(
            secret_key=settings.secret_key.get_secret_value() if settings.secret_key else "",
            grace_days=settings.promise_grace_days,
            min_confidence=settings.triage_min_confidence,
            routes=dict(settings.escalation_routes),
            timezone=settings.timezone,
        )


@dataclass
class InboundResult:
    message_id: int
    # "reply" | "automatic" | "bounce" | "unmatched" | "opt_out" | "opt_in" | "help" | "duplicate"
    outcome: str
    customer_id: int | None = None
    label: str | None = None
    escalation_id: int | None = None
    cancelled: list[int] = field(default_factory=list)
    answer: str | None = None  # what to text back (SMS HELP / STOP confirmations)


def reminder_by_token(addresses: tuple[str, ...], secret: str, purpose: str) -> int | None:
    """The reminder a signed address (ar+r.<token>@…, bounce+<token>@…) names, if any."""
    found = reminder_ids(addresses, secret, purpose) if secret else ()
    return found[0] if found else None


def reminder_by_message_id(session: Session, ids: tuple[str, ...]) -> Reminder | None:
    """The newest reminder one of `ids` names. Only the first and the last MATCHED_IDS / 2 are
    looked up (In-Reply-To comes first, and References ends with the newest): a header of
    thousands would pass the database's limit on one statement's parameters."""
    wanted = list(
        dict.fromkeys(m for raw in ids for m in MESSAGE_ID.findall(raw) or [raw.strip()] if m)
    )
    if len(wanted) > MATCHED_IDS:
        wanted = wanted[: MATCHED_IDS // 2] + wanted[-MATCHED_IDS // 2 :]
    if not wanted:
        return None
    return session.scalars(
        select(Reminder).where(Reminder.message_id.in_(wanted)).order_by(Reminder.id.desc())
    ).first()


def stored_email(
    mail: InboundEmail, raw: bytes | str, now: datetime, reminder_id: int | None, **fields: object
) -> InboundMessage:
    """The message as received (raw kept, as bytes too when text cannot hold it as it came), with
    what is known of whose it is. `mail` is storable already (bot.replies.storable)."""
    raw_text, raw_bytes = storable_raw(raw)
    values: dict[str, object] = {
        "channel": "email",
        "received_at": now,
        "sender": mail.sender,
        "subject": mail.subject,
        "message_id": mail.message_id,
        "raw": raw_text,
        "raw_bytes": raw_bytes,
        "raw_digest": raw_digest(raw),
        "text": mail.text,
        "reminder_id": reminder_id,
        **fields,
    }
    return InboundMessage(**values)


def match_email(
    session: Session, mail: InboundEmail, secret: str
) -> tuple[Reminder | None, int | None, str | None]:
    """(reminder, customer id, how it matched)."""
    reminder_id = reminder_by_token(mail.recipients, secret, "reply")
    if reminder_id is not None and (reminder := session.get(Reminder, reminder_id)) is not None:
        return reminder, reminder.customer_id, "reply_token"
    reminder = reminder_by_message_id(session, mail.in_reply_to + mail.references)
    if reminder is not None:
        return reminder, reminder.customer_id, "in_reply_to"
    if mail.sender:
        customers = set(
            session.scalars(
                select(Contact.customer_id).where(func.lower(Contact.email) == mail.sender.lower())
            )
        )
        if len(customers) == 1:
            return None, customers.pop(), "sender"
    return None, None, None


def contact_for(
    session: Session,
    customer_id: int,
    reminder: Reminder | None,
    email: str | None = None,
    phone: str | None = None,
) -> Contact | None:
    """The contact who wrote: the customer's with the sender's address or number (the reminder's
    own first, as contacts may share one), else the reminder's (someone the ledger does not know
    answered it), else, with no address or number to go by, the customer's first. A colleague on
    file who answers the reminder sent to the billing mailbox is that colleague, not the mailbox:
    an opt-out applies to the address that asked (RULES A7). A reminder whose contact has moved
    to another address since it went is not its contact's any more: None (the address it went
    to is `former_address`'s, and the contact's new one asked nothing)."""
    sent_to = (
        session.get(Contact, reminder.contact_id)
        if reminder is not None and reminder.contact_id is not None
        else None
    )
    if sent_to is not None and _is_sender(sent_to, email, phone):
        return sent_to
    query = select(Contact).where(Contact.customer_id == customer_id)
    if email:
        query = query.where(func.lower(Contact.email) == email.lower())
    if phone:
        query = query.where(Contact.phone == phone)
    writer = session.scalars(query.order_by(Contact.id)).first()
    if writer is not None or sent_to is None or reminder is None:
        return writer or sent_to
    return None if former_address(session, reminder) is not None else sent_to


def _is_sender(contact: Contact, email: str | None, phone: str | None) -> bool:
    """Whether `contact` has the sender's address and number (those given)."""
    if email and (contact.email or "").lower() != email.lower():
        return False
    return not phone or contact.phone == phone
