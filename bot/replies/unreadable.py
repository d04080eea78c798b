"""A message arbot could not handle: reading, matching, labelling or storing it failed.

It is kept as it came (as text a database can hold, and as bytes when that text is not exactly
what arrived) and handed to a person in the finance channel, like a message that matched nobody:
they read it and say whose it is with `/ar assign`. The webhook that brought it answers 200 and
the mailbox marks it read, so it is neither lost nor delivered again and again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import InboundMessage
from bot.replies.match import InboundResult
from bot.replies.storable import MESSAGE_ID_CHARS, SENDER_CHARS, storable, storable_raw

UNREADABLE = "unreadable"  # the outcome, and the stored message's label until a person assigns it


def keep_unreadable(
    session: Session,
    channel: str,
    raw: bytes | str,
    now: datetime,
    why: str,
    *,
    sender: str = "",
    subject: str | None = None,
    message_id: str | None = None,
    text: str | None = None,
) -> InboundResult:
    """Keep the message for a person. `why` says which step failed (never the message's words);
    `text` is what could be read of it (else its raw form is shown)."""
    raw_text, raw_bytes = storable_raw(raw)
    stored = InboundMessage(
        channel=channel,
        received_at=now,
        sender=storable(sender)[:SENDER_CHARS],
        subject=storable(subject) if subject else None,
        message_id=storable(message_id)[:MESSAGE_ID_CHARS] if message_id else None,
        raw=raw_text,
        raw_bytes=raw_bytes,
        text=storable(text) if text else raw_text,
        automatic=False,
        label=UNREADABLE,
        awaiting_slack=True,
    )
    session.add(stored)
    session.flush()
    audit.record(session, now, "reply.unreadable", payload={"inbound": stored.id, "why": why[:200]})
    return InboundResult(stored.id, UNREADABLE, label=UNREADABLE)
