"""What Slack is told once a change is stored: the notes a payment or a reply adds to the
customer's open escalation thread, and the messages that matched no customer, posted to the finance
channel (bot/payments/flows.py and bot/replies/flows.py decide when)."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import slack_claims
from bot.core.labels import reply_label
from bot.core.models import InboundMessage, Invoice
from bot.core.money import format_money
from bot.core.runtime import Runtime
from bot.payments.record import PaymentOutcome
from integrations.base.mrkdwn import Mrkdwn, join, mrkdwn, quote
from integrations.base.slack import EscalationPort, SlackPort
from integrations.errors import SlackFailed

log = logging.getLogger(__name__)


class SlackOut(SlackPort, EscalationPort, Protocol):
    """Both sides of the Slack port, as SlackChat implements them."""


def payment_notes(session: Session, outcome: PaymentOutcome) -> dict[int, Mrkdwn]:
    """customer id → what the thread says, e.g. ":moneybag: Paid: INV-1001 ($1,200.00)."""
    changed = outcome.closed + outcome.reduced + outcome.reopened
    invoices = session.scalars(select(Invoice).where(Invoice.id.in_(changed))).all()
    parts: dict[int, list[Mrkdwn]] = defaultdict(list)
    for invoice in sorted(invoices, key=lambda i: i.number):
        if invoice.id in outcome.reopened:
            parts[invoice.customer_id].append(
                mrkdwn(
                    ":leftwards_arrow_with_hook: Refunded, open again: ",
                    invoice.number,
                    f" ({format_money(invoice.balance, invoice.currency)} due)",
                )
            )
        elif invoice.id in outcome.closed:
            parts[invoice.customer_id].append(
                mrkdwn(
                    ":moneybag: Paid: ",
                    invoice.number,
                    f" ({format_money(invoice.total, invoice.currency)})",
                )
            )
        else:
            parts[invoice.customer_id].append(
                mrkdwn(
                    ":moneybag: Part paid: ",
                    invoice.number,
                    f", {format_money(invoice.balance, invoice.currency)} still due",
                )
            )
    return {customer: join(lines, "\n") for customer, lines in parts.items()}


def _quoted(text: str) -> Mrkdwn:
    """A customer's words in Slack: escaped, so `<!channel>` or a disguised link in an email
    stays text."""
    return quote(text if len(text) <= 1500 else text[:1499] + "…")


def _kind(channel: str) -> str:
    return "text" if channel == "sms" else channel


def reply_note(session: Session, inbound_id: int, label: str | None) -> Mrkdwn:
    message = session.get(InboundMessage, inbound_id)
    assert message is not None
    kind = reply_label(label or "other")
    return mrkdwn(
        f":speech_balloon: New {_kind(message.channel)} reply from ",
        message.sender,
        f" ({kind}):\n",
        _quoted(message.text),
    )


def unmatched_text(session: Session, inbound_id: int) -> Mrkdwn:
    message = session.get(InboundMessage, inbound_id)
    assert message is not None
    quoted = _quoted(message.text)
    subject = mrkdwn(" · ", message.subject) if message.subject else ""
    sender = message.sender or "an unknown sender"
    kind = _kind(message.channel)
    if message.label == "unreadable":  # bot/replies/unreadable.py
        return mrkdwn(
            f":warning: A {kind} from ",
            sender,
            subject,
            f" could not be read automatically; it is kept as it came (message {message.id}).\n",
            quoted,
            f"\nRead it, then say whose it is with `/ar assign {message.id} CUSTOMER`.",
        )
    return mrkdwn(
        f":incoming_envelope: A {kind} from ",
        sender,
        subject,
        " matched no customer.\n",
        quoted,
        f"\nAssign it with `/ar assign {message.id} CUSTOMER`.",
    )


def post_unmatched(
    runtime: Runtime, slack: SlackOut | None, channel: str | None, ids: list[int] | None = None
) -> list[int]:
    """Tell the finance channel about messages nobody could place (these, or every one still
    waiting). Each is claimed first, so the webhook and the sweep never both post it; once
    Slack has it, it is marked told; if Slack refuses, the claim is given back for the next
    sweep. Slack is called outside any writing transaction. Returns the ids posted."""
    if slack is None or not channel:
        return []
    with runtime.sessions() as session:
        waiting = select(InboundMessage.id).where(
            InboundMessage.awaiting_slack.is_(True), InboundMessage.customer_id.is_(None)
        )
        if ids is not None:
            waiting = waiting.where(InboundMessage.id.in_(ids))
        candidates = list(session.scalars(waiting.order_by(InboundMessage.id)))
    posted = []
    for inbound_id in candidates:
        text = _claim_unmatched(runtime, inbound_id)
        if text is None:
            continue  # another process has it
        try:
            slack.post_text(channel, text)
        except SlackFailed as exc:
            log.error("unmatched message %s not posted: %s", inbound_id, exc.error)
            slack_claims.give_back(runtime, InboundMessage, inbound_id)
            break  # Slack is refusing: the rest wait for the next sweep too
        except Exception:
            slack_claims.give_back(runtime, InboundMessage, inbound_id)
            raise
        with runtime.writing() as session:  # told: the sweep leaves it alone from now on
            session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == inbound_id)
                .values(awaiting_slack=False)
            )
        posted.append(inbound_id)
    return posted


def _claim_unmatched(runtime: Runtime, inbound_id: int) -> Mrkdwn | None:
    """The message's text when this process may post it now, else None."""
    with runtime.writing() as session:
        if not slack_claims.claim(
            session,
            InboundMessage,
            inbound_id,
            runtime.clock.now(),
            InboundMessage.awaiting_slack.is_(True),
            InboundMessage.customer_id.is_(None),
        ):
            return None
        return unmatched_text(session, inbound_id)
