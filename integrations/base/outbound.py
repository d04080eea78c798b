"""What goes out to customers: one outgoing message, what became of it, the sender that takes it,
and a model that polishes a reminder's text."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class DraftAnswer:
    """A polished draft, already checked at the edge: subject at most 150 characters (None for
    a text message), body 1 to 5,000."""

    subject: str | None
    body: str


class Drafter(Protocol):
    def draft(
        self,
        channel: str,
        subject: str | None,
        body: str,
        examples: list[str],
        language: str | None = None,
    ) -> DraftAnswer | None:
        """A polished version of the draft in the style of `examples`, kept in the draft's
        `language` (a BCP 47 tag; None: English), or None on any failure (the template's text
        stands)."""
        ...


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by an email, e.g. a copy of an invoice: `INV-1042.pdf`, application/pdf."""

    filename: str  # letters, digits, `.`, `_` and `-` only
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    reminder_id: int
    channel: str  # "email" | "sms"
    to: str  # an email address, or an E.164 number
    to_name: str | None
    from_email: str | None
    from_name: str
    subject: str | None
    text: str
    html: str | None
    message_id: str | None  # <...@domain>, generated and stored before sending
    reply_to: str | None  # ar+<token>@domain: replies find their reminder
    unsubscribe_mailto: str | None
    unsubscribe_url: str | None
    envelope_from: str | None = None  # bounce+<token>@domain (VERP): bounces find their reminder
    date: datetime | None = None  # the Date header: when it was claimed, by arbot's clock
    status_callback: str | None = None  # where the provider reports delivery for this message
    # A person's answer in a conversation: the customer's Message-ID, and the thread's ids
    in_reply_to: str | None = None
    references: str | None = None
    written_by_person: bool = False  # not auto-generated (RFC 3834): no Auto-Submitted header
    attachments: tuple[Attachment, ...] = ()  # email only: files after the text (multipart/mixed)


# How the reason begins when a run's email stopped because the relay refuses our mail by policy
# (5.7.x at DATA, e.g. 5.7.26 when our domain fails DMARC, or at RCPT). The reminder the run
# stopped at keeps it as its `error`, and the next run reads it there (bot/reminders/results.py).
REFUSES_OUR_MAIL = "the SMTP server refuses our mail by policy"
# The same, when email stops so again after a reminder it stopped at, refused again for its own
# recipient, was failed as that recipient's own refusal: the reminders it stops at now are not
# given theirs (integrations/email_out.py, _PolicyRefusals).
STILL_REFUSES_OUR_MAIL = "the SMTP server still refuses our mail by policy"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the provider said. `transient` errors are retried; `permanent` ones end in failed."""

    # "sent"; "transient" (retry later); "permanent" (this message can never go);
    # "unknown" (handed over but no answer: may have gone, never retry blindly);
    # "outage" (our account or configuration: stop the run, leave the reminder approved)
    status: str
    provider_id: str | None = None
    error: str | None = None
    address_unusable: bool = False  # the address or number itself is bad (not just this message)
    opted_out: bool = False  # the recipient unsubscribed (e.g. Twilio 21610 after STOP)


class Sender(Protocol):
    """Sends messages of one channel; used as a context manager around a batch (one connection)."""

    def __enter__(self) -> Sender: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, message: Outgoing) -> Delivery: ...


@runtime_checkable
class RemembersRefusal(Protocol):
    """A sender told, at the start of a run, that the relay refused our mail by policy when its
    channel last stopped and has accepted no message since."""

    def refused_before(self, stopped_at: Collection[int], again: bool) -> None:
        """Until a message is accepted, a refusal by policy is our account's too, except the
        run's first when it is of a reminder email stopped at (`stopped_at`), refused again for
        its own recipient: that one is its own, unless email stopped so `again`
        (in a run that began with it stopped so), when that chance was given already."""
        ...
