"""What comes in from customers: a raw email as the edge reads it (with a bounce report), and what
a reply says (triage) with the classifier that decides it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification says about one of our messages."""

    action: str | None  # "failed", "delayed", "delivered", ... for the recipient reported on
    recipients: tuple[str, ...]  # every address the report is about
    failed_recipients: tuple[str, ...]  # those whose Action is "failed"
    status: str | None  # e.g. "5.1.1"
    permanent: bool  # the mail system gave up on the address (whatever the code): it will not work
    diagnostic: str | None  # e.g. "550 5.1.1 <jo@example.org>: User unknown"
    original_message_id: str | None  # the Message-ID of our message it is about
    # Refused for our side (the sending domain's SPF/DKIM/DMARC, a banned attachment, our server
    # on a block list): the address is fine, we have something to fix.
    sender_side: bool = False
    # A spam complaint (an abuse report from a feedback loop): `recipients` complained.
    complaint: bool = False

    @property
    def summary(self) -> str:
        code = f" ({self.status})" if self.status else ""
        if self.complaint:
            return "spam complaint: the recipient marked our message as spam"
        if self.sender_side:
            return f"refused for our sending domain or content{code}, not for the address"
        if self.action == "delayed":
            return f"delivery delayed{code}, not a failure: the mail system is still trying"
        if self.permanent:
            return f"delivery failed permanently{code}: the address does not accept mail"
        if self.action == "failed":
            return f"delivery failed{code}, possibly temporarily"
        return f"delivery report: {self.action or 'no action given'}{code}"


@dataclass(frozen=True)
class InboundEmail:
    """One inbound email, read by the adapter: who sent it, what they wrote, and what it can be
    matched by (ids, the signed per-reminder addresses it was delivered to)."""

    sender: str  # bare address, lowercased; "" when the message names none
    sender_name: str | None
    subject: str | None
    message_id: str | None  # with its angle brackets, as stored on Reminder.message_id
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    recipients: tuple[str, ...]  # lowercased, from the headers mail is delivered by
    text: str  # what the sender wrote: quoted history and signature removed
    full_text: str  # the whole body as text (HTML converted when there is no text part)
    automatic: str | None  # why a machine sent it; None when a person did
    bounce: Bounce | None  # for a delivery status notification


LABELS: tuple[str, ...] = (
    "dispute",
    "already_paid",
    "promise_to_pay",
    "payment_plan_request",
    "hardship",
    "question",
    "wrong_contact",
    "opt_out",
    "other",
)


PROMISE_HORIZON_DAYS = 366  # a promised day further out than a year is taken for a typo


@dataclass(frozen=True)
class Triage:
    label: str  # one of LABELS
    confidence: float  # 0..1
    promise_date: date | None  # only for promise_to_pay, today to PROMISE_HORIZON_DAYS ahead
    reason: str  # which rule fired on which words, shown to people


class Classifier(Protocol):
    def classify(self, text: str, today: date) -> Triage: ...


class FallbackClassifier(Classifier, Protocol):
    """A classifier that needs nobody else (bot.replies.triage's rules): what an optional model
    falls back to, and what cuts a reply to the customer's own words before a model sees it."""

    def own_words(self, text: str) -> str:
        """The reply without quoted history or a signature."""
        ...
