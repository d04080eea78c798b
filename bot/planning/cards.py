"""The plan's cards: what each stored reminder shows in the finance channel, read for a whole
message's group of reminders in a few queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.labels import reason_label
from bot.core.models import (
    Contact,
    Customer,
    Escalation,
    Event,
    Invoice,
    Reminder,
    ReminderAttachment,
    ReminderInvoice,
)
from bot.core.money import format_money
from bot.escalations.plans import instalment_asks
from bot.learning.trust import since_for
from bot.planning.step_places import step_places
from bot.reminders.shown import version_of
from integrations.base.slack import CardInvoice, ReminderCard


def cards_for(session: Session, reminders: list[Reminder], timezone: str) -> list[ReminderCard]:
    ids = [r.id for r in reminders]
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.id.in_({r.customer_id for r in reminders}))
        )
    }
    contacts = {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.id.in_({r.contact_id for r in reminders if r.contact_id}))
        )
    }
    invoices: dict[int, list[tuple[Invoice, date]]] = defaultdict(list)
    for reminder_id, invoice in session.execute(
        select(ReminderInvoice.reminder_id, Invoice)
        .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
        .where(ReminderInvoice.reminder_id.in_(ids))
        .order_by(Invoice.due_date, Invoice.number)
    ):
        invoices[reminder_id].append((invoice, invoice.due_date))
    owners = dict(
        session.execute(
            select(Escalation.reminder_id, Escalation.owner_slack_id).where(
                Escalation.reminder_id.in_(ids)
            )
        ).all()
    )
    # Who skipped, and why: one query for the whole group, not one per card.
    skips = {
        reminder_id: (actor, (payload or {}).get("reason") or None)
        for reminder_id, actor, payload in session.execute(
            select(Event.reminder_id, Event.actor, Event.payload).where(
                Event.reminder_id.in_([r.id for r in reminders if r.state == "skipped"]),
                Event.kind == "reminder.skipped",
            )
        )
    }
    # Sent though a stop was asked for after its claim (bot/reminders/results.py): the stop.
    sent = [r.id for r in reminders if r.state == "sent"]
    late_stops = {
        reminder_id: str((payload or {}).get("stop"))
        for reminder_id, payload in (
            session.execute(
                select(Event.reminder_id, Event.payload).where(
                    Event.reminder_id.in_(sent), Event.kind == "reminder.sent_after_stop"
                )
            )
            if sent
            else ()
        )
    }
    places = step_places(session, reminders, customers)
    asks = instalment_asks(session, [r.step_key for r in reminders])  # an instalment's amount
    copies: dict[int, list[str]] = defaultdict(list)  # the invoices whose PDF copies it carries
    for reminder_id, number in session.execute(
        select(ReminderAttachment.reminder_id, Invoice.number)
        .join(Invoice, Invoice.id == ReminderAttachment.invoice_id)
        .where(ReminderAttachment.reminder_id.in_([r.id for r in reminders]))
        .order_by(Invoice.number)
    ):
        copies[reminder_id].append(number)
    zone = ZoneInfo(timezone)
    # Approved automatically because their step earned trust: since when (bot/learning/trust.py).
    trusted = since_for(session, [(r, customers[r.customer_id]) for r in reminders])
    cards = []
    for r in reminders:
        customer = customers[r.customer_id]
        contact = contacts.get(r.contact_id) if r.contact_id else None
        lines = invoices.get(r.id, [])
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for invoice, _ in lines:
            totals[invoice.currency] += invoice.balance
        acted_at = r.approved_at or (r.updated_at if r.state not in ("planned",) else None)
        cards.append(
            ReminderCard(
                reminder_id=r.id,
                customer_name=customer.name,
                customer_id=customer.external_id,
                tier=customer.tier,
                action=r.action,
                state=r.state,
                step=r.step_key,
                channel=r.channel,
                contact=(contact.email if r.channel == "email" else contact.phone)
                if contact
                else owners.get(r.id)  # who the escalation went to (owner, or the tier's route)
                if r.action == "escalate"
                else None,
                invoices=tuple(
                    CardInvoice(
                        i.number, format_money(i.balance, i.currency), (r.plan_date - due).days
                    )
                    for i, due in lines
                ),
                total=format_money(*asks[r.step_key])
                if r.step_key in asks
                else ", ".join(format_money(v, k) for k, v in sorted(totals.items())) or "—",
                subject=r.subject,
                preview=r.body_text,
                send_after=r.send_after.astimezone(zone).strftime("%a %H:%M %Z")
                if r.send_after
                else None,
                acted_by=r.approved_by
                if r.state in ("approved", "sending", "sent")
                else skips.get(r.id, (None, None))[0],
                acted_at=acted_at.astimezone(zone).strftime("%H:%M %Z") if acted_at else None,
                note=_unknown_stop(r.cancel_reason)
                if r.state == "unknown" and r.cancel_reason
                else _sent_after_stop(late_stops[r.id])
                if r.id in late_stops
                else r.cancel_reason or r.error or skips.get(r.id, (None, None))[1],
                step_offset=places[r.id][0] if r.id in places else None,
                step_position=places[r.id][1] if r.id in places else None,
                copies=tuple(copies.get(r.id, ())),
                language=r.language,
                trusted_since=f"{trusted[r.id]:%-d %b %Y}" if r.id in trusted else None,
                text_version=version_of(r, contact),
            )
        )
    return cards


def card_of(session: Session, reminder_id: int, timezone: str) -> ReminderCard | None:
    """One reminder's card as the plan shows it (its whole text too): the Preview's content."""
    reminder = session.get(Reminder, reminder_id)
    return cards_for(session, [reminder], timezone)[0] if reminder is not None else None


def _unknown_stop(reason: str) -> str:
    """The note of a reminder left `unknown` by a crash though a stop was asked for after its
    claim."""
    return f"a stop was asked ({reason}) after it was claimed; it was probably not handed over"


def _sent_after_stop(reason: str) -> str:
    """The note of a reminder that went out though a stop was asked for after its claim: the
    provider already had it."""
    return (
        f"it went out after a stop was asked ({reason_label(reason)}); a person has it in the "
        "customer's escalation"
    )
