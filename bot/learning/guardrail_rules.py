"""Recurring errors that call for a guardrail, found in what arbot already logged.

Four rules, thresholds pinned here (and in the README):
- bounces: BOUNCES_AT_DOMAIN emails to one customer's addresses at one domain bounced within
  BOUNCE_DAYS (`contact.bouncing` events, one per bounced reminder) -> hold the customer and ask
  a person for a new billing contact;
- wrong contact: WRONG_CONTACT_REPLIES replies labelled `wrong_contact` from one customer within
  WRONG_CONTACT_DAYS -> stop writing to the addresses that reached the wrong person and use the
  billing contact the CRM gave (when the CRM gave one that is usable), else hold and ask;
- correction: an invoice's balance raised, a paid invoice reopened, or its due date changed by the
  ledger, after a reminder covering it went out, within CORRECTION_DAYS -> hold the customer's
  next reminder until a person has checked it;
- no contact: a customer the day's plan held back for want of any contact -> ask a person for one.

Only what happened after the last decision on the same guardrail counts, so an approved or
dismissed guardrail is not proposed again from the same evidence. Nothing is stored here
(bot/learning/guardrails.py stores, decides and shows proposals).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Event, InboundMessage, Reminder, ReminderInvoice
from bot.core.money import format_money
from bot.learning.guardrail_holds import (
    HOLD_BOUNCES,
    HOLD_CORRECTION,
    HOLD_WRONG_CONTACT,
    payload_text,
)

BOUNCES_AT_DOMAIN = 3
BOUNCE_DAYS = 30
WRONG_CONTACT_REPLIES = 2
WRONG_CONTACT_DAYS = 60
CORRECTION_DAYS = 30
CORRECTION_KINDS = ("invoice.balance_changed", "invoice.reopened", "invoice.due_date_changed")
SUPPRESS_WEEKS = 8  # a dismissed guardrail is not proposed again for this long

BOUNCES, WRONG_CONTACT, CORRECTION, NO_CONTACT = (
    "bounces",
    "wrong_contact",
    "correction",
    ("no_contact"),
)
RULES = (BOUNCES, WRONG_CONTACT, CORRECTION, NO_CONTACT)
CONTACT_NEEDED = "contact_needed"  # the escalation's reason when a person is asked for a contact

Since = Callable[[str], datetime | None]  # a guardrail's key -> its last decision, if any


@dataclass(frozen=True)
class Candidate:
    """A guardrail the evidence supports, as it would be proposed."""

    rule: str
    key: str  # one open proposal per key
    customer_id: int
    happened: str  # what happened, in words
    change: str  # what approving would change, in words
    hold: str | None = None  # the hold reason approving sets (guardrail_holds.HOLD_*)
    until_contact: bool = False  # the hold ends when a usable contact is added
    ask: str | None = None  # approving opens an escalation asking a person this
    unusable: tuple[int, ...] = ()  # contacts whose email approving stops using
    evidence: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "key": self.key,
            "happened": self.happened,
            "change": self.change,
            "hold": self.hold,
            "until_contact": self.until_contact,
            "ask": self.ask,
            "unusable": list(self.unusable),
            "evidence": self.evidence,
        }


def detect(
    session: Session, now: datetime, no_contact: Iterable[int], since: Since
) -> list[Candidate]:
    """Every guardrail the logged errors support now; `no_contact` are the customers today's plan
    held back for want of any contact."""
    return (
        _bounces(session, now, since)
        + _wrong_contacts(session, now, since)
        + _corrections(session, now, since)
        + _no_contact(session, sorted(set(no_contact)))
    )


def _after(at: datetime, key: str, since: Since) -> bool:
    last = since(key)
    return last is None or at > last


def _names(session: Session, ids: Iterable[int]) -> dict[int, Customer]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


def _asked_of(customer: Customer) -> str:
    return "the account owner" if customer.owner_slack_id else "the finance team"


def _bounces(session: Session, now: datetime, since: Since) -> list[Candidate]:
    rows = session.execute(
        select(Event.id, Event.at, Event.customer_id, Event.reminder_id, Event.payload).where(
            Event.kind == "contact.bouncing",
            Event.at >= now - timedelta(days=BOUNCE_DAYS),
            Event.customer_id.is_not(None),
        )
    ).all()
    contact_ids = {int(p["contact"]) for *_, p in rows if isinstance(p.get("contact"), int)}
    emails = dict(
        session.execute(select(Contact.id, Contact.email).where(Contact.id.in_(contact_ids))).all()
    )
    groups: dict[tuple[int, str], dict[int, tuple[datetime, str]]] = defaultdict(dict)
    for event_id, at, customer_id, reminder_id, payload in rows:
        # the address that bounced: the contact's, or one it has moved from since (its own)
        email = str(payload.get("address") or emails.get(payload.get("contact")) or "")
        if "@" not in email:
            continue
        domain = email.rsplit("@", 1)[1].lower()
        if _after(at, f"{BOUNCES}:{customer_id}:{domain}", since):
            # one bounce per reminder: a DSN delivered twice is one failure
            groups[(customer_id, domain)][reminder_id or -event_id] = (at, email.lower())
    found = []
    customers = _names(session, [c for c, _ in groups])
    for (customer_id, domain), bounces in sorted(groups.items()):
        if len(bounces) < BOUNCES_AT_DOMAIN:
            continue
        customer = customers[customer_id]
        addresses = sorted({email for _, email in bounces.values()})
        latest = max(at for at, _ in bounces.values())
        found.append(
            Candidate(
                rule=BOUNCES,
                key=f"{BOUNCES}:{customer_id}:{domain}",
                customer_id=customer_id,
                happened=(
                    f"{len(bounces)} emails to {customer.name} at {domain} bounced in the last "
                    f"{BOUNCE_DAYS} days ({', '.join(addresses)}; the latest on "
                    f"{latest.date().isoformat()})."
                ),
                change=(
                    f"Hold {customer.name}: no reminders until a new billing contact is added "
                    f"(or someone releases the hold here), and ask {_asked_of(customer)} for a "
                    "new billing contact in an escalation thread."
                ),
                hold=HOLD_BOUNCES,
                until_contact=True,
                ask=(
                    f"emails to {domain} keep bouncing ({len(bounces)} in {BOUNCE_DAYS} days): "
                    "find a new billing contact and add it to the ledger"
                ),
                evidence={"domain": domain, "bounces": len(bounces), "addresses": addresses},
            )
        )
    return found


def _wrong_contacts(session: Session, now: datetime, since: Since) -> list[Candidate]:
    rows = session.execute(
        select(
            InboundMessage.customer_id,
            InboundMessage.received_at,
            InboundMessage.sender,
            Reminder.contact_id,
        )
        .outerjoin(Reminder, Reminder.id == InboundMessage.reminder_id)
        .where(
            InboundMessage.label == "wrong_contact",
            InboundMessage.automatic.is_(False),
            InboundMessage.customer_id.is_not(None),
            InboundMessage.received_at >= now - timedelta(days=WRONG_CONTACT_DAYS),
        )
    ).all()
    groups: dict[int, list[tuple[datetime, str, int | None]]] = defaultdict(list)
    for customer_id, received_at, sender, contact_id in rows:
        if customer_id is not None and _after(received_at, f"{WRONG_CONTACT}:{customer_id}", since):
            groups[customer_id].append((received_at, (sender or "").lower(), contact_id))
    found = []
    customers = _names(session, groups)
    for customer_id, replies in sorted(groups.items()):
        if len(replies) < WRONG_CONTACT_REPLIES:
            continue
        customer = customers[customer_id]
        contacts = session.scalars(select(Contact).where(Contact.customer_id == customer_id)).all()
        senders = {sender for _, sender, _ in replies}
        reached = {contact_id for *_, contact_id in replies if contact_id is not None}
        wrong = [c for c in contacts if c.id in reached or (c.email or "").lower() in senders]
        wrong_emails = sorted({(c.email or "").lower() for c in wrong if c.email} | senders)
        crm = _crm_contact(session, customer, contacts, {c.id for c in wrong})
        happened = (
            f"{len(replies)} replies from {customer.name} in the last {WRONG_CONTACT_DAYS} days "
            f"say we write to the wrong person ({', '.join(wrong_emails) or 'no address kept'})."
        )
        stop = (
            f"Stop writing to {', '.join(c.email or '' for c in wrong)} (never used again)"
            if wrong
            else "Keep the addresses as they are"
        )
        evidence: dict[str, Any] = {"replies": len(replies), "wrong": [c.id for c in wrong]}
        if crm is not None:
            evidence["crm_contact"] = crm.id
            found.append(
                Candidate(
                    rule=WRONG_CONTACT,
                    key=f"{WRONG_CONTACT}:{customer_id}",
                    customer_id=customer_id,
                    happened=happened,
                    change=(
                        f"{stop}, and send {customer.name}'s reminders to {crm.email}, the "
                        f"billing contact from the CRM ({customer.crm_ref or 'CRM'})."
                    ),
                    unusable=tuple(c.id for c in wrong),
                    evidence=evidence,
                )
            )
            continue
        found.append(
            Candidate(
                rule=WRONG_CONTACT,
                key=f"{WRONG_CONTACT}:{customer_id}",
                customer_id=customer_id,
                happened=happened + " The CRM gives no other billing contact.",
                change=(
                    f"{stop}; hold {customer.name} until a new billing contact is added (or "
                    f"someone releases the hold here), and ask {_asked_of(customer)} for one in "
                    "an escalation thread."
                ),
                hold=HOLD_WRONG_CONTACT,
                until_contact=True,
                ask="replies say we write to the wrong person: find the right billing contact "
                "and add it to the ledger",
                unusable=tuple(c.id for c in wrong),
                evidence=evidence,
            )
        )
    return found


def _crm_contact(
    session: Session, customer: Customer, contacts: Iterable[Contact], wrong: set[int]
) -> Contact | None:
    """The billing contact the CRM gave this customer (its `customer.crm_updated` events name its
    address), when it is not one of the wrong ones and can still be written to."""
    if not customer.crm_ref:
        return None
    given = [
        payload_text(p, "billing_contact").lower()
        for p in session.scalars(
            select(Event.payload)
            .where(Event.customer_id == customer.id, Event.kind == "customer.crm_updated")
            .order_by(Event.id.desc())
        )
    ]
    for email in filter(None, given):
        for contact in contacts:
            if (
                (contact.email or "").lower() == email
                and contact.id not in wrong
                and contact.email_opted_out_at is None
                and contact.email_unusable_at is None
            ):
                return contact
    return None


def _money(payload: dict[str, Any], key: str) -> Decimal | None:
    try:
        return Decimal(str(payload.get(key)))
    except (InvalidOperation, ValueError):
        return None


def _correction_words(kind: str, payload: dict[str, Any]) -> str | None:
    """What the ledger changed, in words; None for a change that is no correction (a balance
    going down is a payment)."""
    number = payload_text(payload, "number") or "an invoice"
    currency = payload_text(payload, "currency") or "USD"
    before, after = _money(payload, "balance_before"), _money(payload, "balance_after")
    if kind == "invoice.due_date_changed":
        due_before, due_after = (
            payload_text(payload, "due_before"),
            payload_text(payload, "due_after"),
        )
        return f"{number}'s due date changed from {due_before} to {due_after}"
    if before is None or after is None or after <= before:
        return None
    was, now_is = format_money(before, currency), format_money(after, currency)
    if kind == "invoice.reopened":
        return f"{number} was reopened: its balance went from {was} to {now_is}"
    return f"{number}'s balance was corrected up from {was} to {now_is}"


def _corrections(session: Session, now: datetime, since: Since) -> list[Candidate]:
    # Events without an invoice are left out here, not in the query: asking for an invoice there
    # leads SQLite to the partial index of the events that name one, slower than a scan of the
    # table when they are many.
    rows = [
        row
        for row in session.execute(
            select(Event.at, Event.customer_id, Event.invoice_id, Event.kind, Event.payload).where(
                Event.kind.in_(CORRECTION_KINDS),
                Event.at >= now - timedelta(days=CORRECTION_DAYS),
                Event.customer_id.is_not(None),
            )
        )
        if row.invoice_id is not None
    ]
    if not rows:
        return []
    first_sent = dict(
        session.execute(
            select(ReminderInvoice.invoice_id, func.min(Reminder.sent_at))
            .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
            .where(
                ReminderInvoice.invoice_id.in_({r[2] for r in rows}),
                Reminder.action == "remind",
                Reminder.sent_at.is_not(None),
            )
            .group_by(ReminderInvoice.invoice_id)
        ).all()
    )
    groups: dict[int, list[tuple[datetime, str, datetime]]] = defaultdict(list)
    for at, customer_id, invoice_id, kind, payload in rows:
        sent = first_sent.get(invoice_id)
        words = _correction_words(kind, payload)
        if sent is None or sent >= at or words is None:
            continue
        if _after(at, f"{CORRECTION}:{customer_id}", since):
            groups[customer_id].append((at, words, sent))
    found = []
    customers = _names(session, groups)
    for customer_id, corrections in sorted(groups.items()):
        customer = customers[customer_id]
        corrections.sort()
        lines = "; ".join(
            f"{words} on {at.date().isoformat()}, after a reminder went out on "
            f"{sent.date().isoformat()}"
            for at, words, sent in corrections[-3:]
        )
        more = f" (and {len(corrections) - 3} more)" if len(corrections) > 3 else ""
        found.append(
            Candidate(
                rule=CORRECTION,
                key=f"{CORRECTION}:{customer_id}",
                customer_id=customer_id,
                happened=f"The ledger corrected {customer.name}'s invoices: {lines}{more}.",
                change=(
                    f"Hold {customer.name}'s next reminder for review: nothing goes to "
                    f"{customer.name} until someone checks the corrected amounts and dates and "
                    "clicks Release here."
                ),
                hold=HOLD_CORRECTION,
                evidence={"corrections": len(corrections)},
            )
        )
    return found


def _no_contact(session: Session, customer_ids: list[int]) -> list[Candidate]:
    customers = _names(session, customer_ids)
    return [
        Candidate(
            rule=NO_CONTACT,
            key=f"{NO_CONTACT}:{customer_id}",
            customer_id=customer_id,
            happened=(
                f"{customers[customer_id].name} has reminders due, but no billing or primary "
                "contact with an email address or a phone number, so the plan holds it back "
                "every morning."
            ),
            change=(
                f"Ask {_asked_of(customers[customer_id])} for a billing contact in an escalation "
                "thread; the reminders start once one is added to the ledger."
            ),
            ask="no billing contact to write to: find one and add it to the ledger",
        )
        for customer_id in customer_ids
        if customer_id in customers
    ]
