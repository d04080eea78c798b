"""What an approver was shown of a reminder's message: a short version of what would be sent (its
channel, the address it goes to, its subject and text), drawn into the card's Approve button and
the header's Approve all. An approval counts only while the message is still the one shown: an
Edit, an Edit then Undo, a new draft or a contact's new address since the card was drawn changes
the version, and the click is refused (bot/reminders/approvals.py)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Reminder
from integrations.base.slack import TEXT_VERSION_LENGTH

# What a card drawn before Approve carried a version showed, as far as anyone can tell: no
# version of any message, so such a click approves nothing (its card is drawn again instead).
NOT_SHOWN = ""


def text_version(
    channel: str | None,
    to: str | None,
    subject: str | None,
    body_text: str | None,
    body_html: str | None,
) -> str:
    """The version of a message: the same for the same message to the same address, and
    another (but for one chance in 2^36) as soon as any of these differs."""
    message = json.dumps([channel, to, subject, body_text, body_html], ensure_ascii=False)
    digest = hashlib.sha256(message.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TEXT_VERSION_LENGTH]


def address_of(channel: str | None, contact: Contact | None) -> str | None:
    """Where a reminder on `channel` goes: the contact's email, or phone for a text."""
    if contact is None:
        return None
    return contact.email if channel == "email" else contact.phone


def version_of(reminder: Reminder, contact: Contact | None) -> str:
    """The version of a reminder's message as it stands, sent to `contact` (its contact)."""
    return text_version(
        reminder.channel,
        address_of(reminder.channel, contact),
        reminder.subject,
        reminder.body_text,
        reminder.body_html,
    )


def versions_of(session: Session, reminder_ids: Collection[int]) -> dict[int, str]:
    """The version of each of these reminders' messages as stored now, in one query."""
    return {
        reminder_id: message.version
        for reminder_id, message in messages_of(session, reminder_ids).items()
    }


@dataclass(frozen=True)
class Message:
    """A reminder's message as read from the database: what its version is made of, and its
    contact (whose address it goes to)."""

    channel: str | None
    contact_id: int | None
    to: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None

    @property
    def version(self) -> str:
        return text_version(self.channel, self.to, self.subject, self.body_text, self.body_html)

    def unchanged(self) -> list[ColumnElement[bool]]:
        """Conditions for an UPDATE that hold only while the reminder's message is still this
        one (an edit committed since it was read makes them false)."""
        return [
            Reminder.channel.is_not_distinct_from(self.channel),
            Reminder.contact_id.is_not_distinct_from(self.contact_id),
            Reminder.subject.is_not_distinct_from(self.subject),
            Reminder.body_text.is_not_distinct_from(self.body_text),
            Reminder.body_html.is_not_distinct_from(self.body_html),
        ]


def messages_of(session: Session, reminder_ids: Collection[int]) -> dict[int, Message]:
    """These reminders' messages as the database holds them now, in one query: columns, not
    the Reminder objects the session may have loaded before an edit was committed."""
    if not reminder_ids:
        return {}
    rows = session.execute(
        select(
            Reminder.id,
            Reminder.channel,
            Reminder.contact_id,
            Contact.email,
            Contact.phone,
            Reminder.subject,
            Reminder.body_text,
            Reminder.body_html,
        )
        .outerjoin(Contact, Contact.id == Reminder.contact_id)
        .where(Reminder.id.in_(sorted(reminder_ids)))
    )
    return {
        reminder_id: Message(
            channel,
            contact_id,
            None if contact_id is None else (email if channel == "email" else phone),
            subject,
            body_text,
            body_html,
        )
        for reminder_id, channel, contact_id, email, phone, subject, body_text, body_html in rows
    }
