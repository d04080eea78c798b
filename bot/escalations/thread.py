"""What an escalation's thread shows: the parent message's view of the account (open invoices,
late payments this year, a suggested next step) and the account's history in the business's words."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.labels import channel_label, reason_label, reply_label, step_label
from bot.core.models import Contact, Customer, Event, InboundMessage, Invoice, Reminder
from bot.core.money import format_money
from bot.escalations import plans
from bot.escalations.reply import reply_contact
from bot.escalations.service import HISTORY_LIMIT, load, open_invoices
from bot.ledger.change_words import CONSENT_WITHDRAWN, ledger_change
from integrations.base.mrkdwn import Mrkdwn, actor, mention, mrkdwn
from integrations.base.slack import (
    ContactLine,
    EscalationView,
    HistoryLine,
    InvoiceLine,
    SentLine,
)


def view(session: Session, escalation_id: int, today: date, timezone: str) -> EscalationView:
    escalation = load(session, escalation_id)
    customer = session.get(Customer, escalation.customer_id)
    assert customer is not None
    invoices = open_invoices(session, customer.id)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        totals[invoice.currency] += invoice.balance
    reply = session.scalars(
        select(InboundMessage)
        .where(InboundMessage.customer_id == customer.id, InboundMessage.automatic.is_(False))
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
    ).first()
    recent_reply = (
        reply if reply and reply.received_at >= escalation.opened_at - timedelta(hours=1) else None
    )
    history = history_of(session, customer.id, timezone)
    return EscalationView(
        id=escalation.id,
        customer_id=customer.id,
        customer_name=customer.name,
        customer_ref=customer.external_id,
        tier=customer.tier,
        owner=escalation.owner_slack_id or customer.owner_slack_id,
        state=escalation.state,
        reason=escalation.reason,
        detail=escalation.detail,
        label=recent_reply.label if recent_reply else None,
        wrote=recent_reply.text if recent_reply else None,
        at_stake=", ".join(format_money(v, k) for k, v in sorted(totals.items())) or "nothing open",
        suggestion=suggest(
            escalation.reason,
            recent_reply.label if recent_reply else None,
            recent_reply.promise_date if recent_reply else None,
            invoices,
            late_payments_this_year(session, customer.id, today, timezone),
            promise_holds_until(session, customer.id, recent_reply.promise_date, timezone)
            if recent_reply and recent_reply.promise_date
            else None,
        ),
        claimed_by=escalation.owner_slack_id if escalation.state == "claimed" else None,
        invoices=tuple(
            InvoiceLine(
                i.number,
                format_money(i.balance, i.currency),
                (today - i.due_date).days,
                i.disputed,
                i.promise_date,
                i.payment_link,
            )
            for i in invoices
        ),
        history=tuple(history),
        contacts=contacts_of(session, customer.id),
        sent=last_sent(session, customer.id, timezone),
        resolution=escalation.resolution if escalation.state == "resolved" else None,
        plan=plan_lines(session, customer.id),
        plan_running=plans.active_plan(session, customer.id) is not None,
    )


def plan_lines(session: Session, customer_id: int) -> tuple[str, ...]:
    """The customer's latest payment plan: its summary, then a line per instalment."""
    progress = plans.progress(session, customer_id)
    return (progress.summary(), *progress.lines()) if progress else ()


SENT_SHOWN = 3  # the last messages sent, one line each; each opens in full on request


def contacts_of(session: Session, customer_id: int) -> tuple[ContactLine, ...]:
    """Everyone on file for the customer, the one a reply from the thread goes to first."""
    first = reply_contact(session, customer_id)
    contacts = sorted(
        session.scalars(select(Contact).where(Contact.customer_id == customer_id)),
        key=lambda c: (first is None or c.id != first.id, c.id),
    )
    return tuple(
        ContactLine(
            c.name,
            c.email,
            c.phone,
            c.role,
            "opted out of email"
            if c.email_opted_out_at
            else "email bounced"
            if c.email_unusable_at
            else None,
        )
        for c in contacts
    )


def last_sent(session: Session, customer_id: int, timezone: str) -> tuple[SentLine, ...]:
    rows = session.execute(
        select(Reminder.id, Reminder.sent_at, Reminder.channel, Reminder.step_key, Reminder.subject)
        .where(
            Reminder.customer_id == customer_id,
            Reminder.state == "sent",
            Reminder.sent_at.is_not(None),
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
        .limit(SENT_SHOWN)
    ).all()
    zone = ZoneInfo(timezone)
    return tuple(
        SentLine(rid, at.astimezone(zone), channel or "email", step_label(step), subject)
        for rid, at, channel, step, subject in rows
        if at is not None
    )


def sent_message(session: Session, reminder_id: int) -> tuple[str, str | None, str]:
    """(customer name, subject, text) of a message sent to the customer, for Show."""
    reminder = session.get(Reminder, reminder_id)
    if reminder is None or reminder.state != "sent":
        raise UserError("That message is not among those sent: nothing to show.")
    customer = session.get(Customer, reminder.customer_id)
    assert customer is not None
    return customer.name, reminder.subject, reminder.body_text or ""


def _promise_step(promised: date, ends: date | None) -> str:
    """What to do about a promise: nothing until its grace is over (the day the sweep clears it
    and the sequence resumes), or record it when it was not."""
    day = f"{promised:%a %d %b}"
    if ends is None:
        return f"Promise for {day}, not recorded: record it to hold reminders until then."
    grace = (ends - promised).days - 1
    after = {0: "", 1: " (1 day's grace)"}.get(grace, f" ({grace} days' grace)")
    return (
        f"Promise for {day}: nothing to do until {ends:%a %d %b}{after}; "
        "arbot resumes then if it is still open."
    )


def late_payments_this_year(
    session: Session, customer_id: int, today: date, timezone: str = "UTC"
) -> int:
    """Invoices paid after their due date since January 1st, days in `timezone` (the
    business's: a ledger file's paid day is stored from its start there)."""
    zone = ZoneInfo(timezone)
    start = datetime(today.year, 1, 1, tzinfo=zone)
    paid = session.execute(
        select(Invoice.due_date, Invoice.paid_at).where(
            Invoice.customer_id == customer_id,
            Invoice.status == "paid",
            Invoice.paid_at.is_not(None),
            Invoice.paid_at >= start,
        )
    ).all()
    return sum(1 for due, at in paid if at is not None and at.astimezone(zone).date() > due)


def promise_holds_until(
    session: Session, customer_id: int, promised: date, timezone: str
) -> date | None:
    """The business's day a recorded promise to pay by `promised` stops holding the account back
    (the day after its grace, when the missed-promise sweep clears it), as its promise.recorded
    event says; None when no such promise was recorded (an unsure reply records none)."""
    recorded = session.scalars(
        select(Event.payload)
        .where(Event.customer_id == customer_id, Event.kind == "promise.recorded")
        .order_by(Event.at.desc(), Event.id.desc())
    )
    for payload in recorded:
        if payload and payload.get("promised") == promised.isoformat():
            resumes = datetime.fromisoformat(payload["resume_after"])
            return resumes.astimezone(ZoneInfo(timezone)).date()
    return None


def suggest(
    reason: str,
    label: str | None,
    promised: date | None,
    invoices: list[Invoice],
    late_this_year: int,
    promise_ends: date | None = None,
) -> str:
    """A next step drawn from what happened and the account's pattern. `promise_ends`: the
    business's day a recorded promise stops holding the account back (promise_holds_until)."""
    first = invoices[0].number if invoices else "the invoice"
    if label == "dispute" or reason in ("dispute", "card_dispute"):
        return f"Dispute: check the delivery record for {first} before anything else is sent."
    if label == "promise_to_pay" and promised is not None:
        return _promise_step(promised, promise_ends)
    if label == "already_paid":
        return f"They say it is paid: look for the payment in the bank feed before chasing {first}."
    if label == "payment_plan_request":
        return "Payment plan asked for: agree instalments, then mark the invoices on a plan."
    if label == "hardship":
        return "Hardship: a call from the account owner, not another reminder."
    if label == "wrong_contact":
        return "Wrong contact: find the right billing contact and update the ledger."
    if label == "opt_out":
        return "They asked to stop: reach them another way only if the debt warrants it."
    if label == "question":
        return "A question: answer it in the thread's email, then resume the sequence."
    if reason == "send_failed":
        return "A message could not be delivered: check the contact's address or number."
    if reason == "send_unknown":
        return (
            "Look for the message in the sent mailbox (or the SMS provider's log): if it went "
            "out, resolve this; if not, write to them with Reply."
        )
    if reason == "sent_after_stop":
        return (
            "A reminder went out after a stop was asked (a payment, reply, pause or dispute): the "
            "provider already had it. Check whether to apologise, and write to them with Reply."
        )
    if reason == "missed_promise":
        return "The promised date passed: call them, and resume the sequence if nothing comes."
    if late_this_year >= 3:
        return f"Late payment number {late_this_year} this year: consider a call."
    return "Look at the history below, claim it, and decide the next step."


_KIND_TEXT = {
    "reminder.sent": "sent",
    "reminder.delivered": "delivered",
    "reminder.failed": "failed",
    "reminder.approved": "approved",
    "reminder.skipped": "skipped",
    "reminder.cancelled": "cancelled",
    "reminder.edited": "edited",
    "payment.received": "payment",
    "invoice.paid": "paid",
    "invoice.reopened": "reopened",
    "invoice.voided": "voided",
    "invoice.balance_changed": "balance changed",
    "invoice.paid_at_changed": "paid date changed",
    "invoice.disputed": "disputed",
    "invoice.dispute_cleared": "dispute cleared",
    "invoice.due_date_changed": "due date changed",
    "invoice.total_changed": "total changed",
    "invoice.issue_date_changed": "issue date changed",
    "invoice.renumbered": "renumbered",
    "invoice.moved": "moved from another customer",
    "reply.received": "reply",
    "reply.automatic": "automatic reply",
    "promise.recorded": "promise",
    "promise.missed": "promise missed",
    "escalation.opened": "escalated",
    "escalation.added": "escalated",
    "escalation.claimed": "claimed",
    "escalation.resolved": "resolved",
    "customer.paused": "paused",
    "customer.resumed": "resumed",
    "contact.bouncing": "bouncing",
    "contact.opted_out": "opted out",
    "contact.sms_consent_withdrawn": CONSENT_WITHDRAWN,
    "contact.email_changed": "email address changed",
    "contact.phone_changed": "phone number changed",
    "note.added": "note",
    "plan.recorded": "payment plan",
    "plan.completed": "payment plan completed",
    "plan.cancelled": "payment plan cancelled",
    "instalment.paid": "instalment paid",
    "instalment.missed": "instalment missed",
    "escalation.reopened": "reopened",
    "reply.written": "reply written",
    "card.disputed": "card dispute",
}


def history_of(session: Session, customer_id: int, timezone: str) -> list[HistoryLine]:
    """Every touch, reply, payment and decision about the customer, oldest first."""
    events = list(
        session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id, Event.kind.in_(list(_KIND_TEXT)))
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(HISTORY_LIMIT)
        )
    )
    events.reverse()
    steps = dict(
        session.execute(
            select(Reminder.id, Reminder.step_key).where(
                Reminder.id.in_({e.reminder_id for e in events if e.reminder_id})
            )
        ).all()
    )
    channels = dict(
        session.execute(
            select(Reminder.id, Reminder.channel).where(Reminder.id.in_(list(steps)))
        ).all()
    )
    zone = ZoneInfo(timezone)
    lines = []
    for e in events:
        when = e.at.astimezone(zone)
        lines.append(HistoryLine(when, e.kind, _describe(e, steps, channels, zone)))
    return lines


def _describe(
    event: Event, steps: dict[int, str], channels: dict[int, str | None], zone: ZoneInfo
) -> Mrkdwn:
    """One line of the history: what the payload says escaped, who did it as a live mention;
    instants in the business's timezone (`zone`), as the lines' own times are."""
    p: dict[str, Any] = event.payload or {}
    who = "" if event.actor == audit.SYSTEM else mrkdwn(" by ", actor(event.actor))
    what = _KIND_TEXT.get(event.kind, event.kind)
    if event.reminder_id and event.kind.startswith("reminder."):
        step = steps.get(event.reminder_id)
        channel = channels.get(event.reminder_id)
        return mrkdwn(
            what,
            f" {step_label(step)}" if step else "",
            f" by {channel_label(channel)}" if channel else "",
            who,
            f" ({reason_label(str(p['reason']))})" if p.get("reason") else "",
            f": {p['error']}" if p.get("error") else "",
        )
    if event.kind == "payment.received":
        return mrkdwn(f"payment of {p.get('amount')} {p.get('currency')} ({p.get('source')})", who)
    if event.kind in (
        "invoice.paid",
        "invoice.reopened",
        "invoice.voided",
        "invoice.disputed",
        "invoice.dispute_cleared",
    ):
        return mrkdwn(what, " ", str(p.get("number", "")), who)
    if event.kind in ("contact.opted_out", "contact.bouncing") and p.get("address"):
        # an address the contact has moved from since the message to it went, not its own now
        return mrkdwn(what, ": ", str(p["address"]), ", a former address", who)
    changed = ledger_change(event.kind, p, lambda instant: _local_minute(instant, zone))
    if changed is not None:
        return mrkdwn(changed)
    if event.kind in ("reply.received", "reply.automatic"):
        text = str(p.get("text", ""))
        short = text if len(text) <= 280 else text[:277] + "…"
        label = f" ({reply_label(str(p['label']))})" if p.get("label") else ""
        how = channel_label(str(p.get("channel", "email")))
        return mrkdwn(f"{what} by {how}{label}: “", short, "”")
    if event.kind == "plan.recorded":
        count = len(p.get("instalments") or [])
        covers = ", ".join(str(n) for n in p.get("invoices") or [])
        return mrkdwn(
            f"payment plan of {count} instalments in {p.get('currency')} for ", covers, who
        )
    if event.kind == "plan.cancelled":
        return mrkdwn(
            f"{what} after {p.get('instalments_paid')} of {p.get('instalments')} instalments "
            f"({p.get('paid')} of {p.get('total')} {p.get('currency')} paid)",
            who,
        )
    if event.kind in ("instalment.paid", "instalment.missed"):
        return mrkdwn(
            f"{what}: number {p.get('seq')}, {p.get('amount')} {p.get('currency')} "
            f"due {p.get('due_on')}"
        )
    if event.kind == "promise.recorded":
        return mrkdwn(f"promise to pay by {p.get('promised')}", who)
    if event.kind in ("escalation.opened", "escalation.added"):
        return mrkdwn(what, ": ", reason_label(str(p.get("reason", ""))), who)
    if event.kind == "escalation.resolved":
        return mrkdwn("resolved", who, ": ", str(p.get("outcome", "")))
    if event.kind == "reply.written":
        text = str(p.get("text", ""))
        short = text if len(text) <= 280 else text[:277] + "…"
        return mrkdwn("reply to ", str(p.get("to", "")), who, ": “", short, "”")
    if event.kind == "note.added":
        return mrkdwn("note", who, ": ", _with_mentions(str(p.get("text", "")), p.get("mentions")))
    return mrkdwn(what, who)


# A mention as a note stored before notes kept their `mentions` wrote it (`@U024BE7LH`): a Slack
# user id, U or W and at least eight capitals and digits with a digit among them, so a word such as
# @UPS or @USERNAMES stays as typed; and not the @ of an address (AP@UNITEDFOODS.COM,
# ap@U0ALICE01.example).
_OLD_MENTION = re.compile(r"(?<![\w.%+-])@([UW](?=[A-Z]*[0-9])[A-Z0-9]{8,30})\b(?!\.[A-Za-z])")


def _with_mentions(note: str, mentions: object) -> Mrkdwn:
    """A note as written, escaped, with each person Slack mentioned in it mentioned again: its
    payload's `mentions` says where (`[offset, id]`, the `@id` in the text); an address such as
    ap@UNITEDFOODS.COM, or an `@U…` typed as text, stays as written. A note stored before notes
    kept `mentions` (None) mentions each `@U…` it writes that is not part of an address."""
    if mentions is None:
        found = [(m.start(), m.group(1)) for m in _OLD_MENTION.finditer(note)]
    else:
        found = [
            (m[0], m[1])
            for m in (mentions if isinstance(mentions, list) else [])
            if isinstance(m, list)
            and len(m) == 2
            and isinstance(m[0], int)
            and isinstance(m[1], str)
        ]
    spots = sorted(found)
    pieces: list[str] = []
    at = 0
    for offset, person in spots:
        tag = f"@{person}"
        if offset < at or note[offset : offset + len(tag)] != tag:
            continue
        pieces += [note[at:offset], mention(person)]
        at = offset + len(tag)
    pieces.append(note[at:])
    return mrkdwn(*pieces)


def _local_minute(instant: str, zone: ZoneInfo) -> str:
    """An event's ISO instant as `2026-02-20 00:00` in the business's timezone."""
    return datetime.fromisoformat(instant).astimezone(zone).strftime("%Y-%m-%d %H:%M")
