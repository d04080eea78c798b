"""What followed each reminder that went out, worked out from the ledger, the replies and the
escalations (nothing here is stored), and how well each playbook step does.

Attribution, per invoice: money is credited to the last touch of that invoice sent on or before
the day it was received. A touch's window therefore runs from the day it was sent up to the next
touch of the same invoice; money received before the first touch is credited to no touch. Money
is what `bot.learning.metrics` reconstructs: recorded payments' allocations (refunds are negative), plus,
for an invoice paid in the ledger with no payment recorded here, the unexplained rest on its
`paid_at` day. Payment dates are days, so a payment on the day of a touch counts as following it.

Replies and escalations are per customer and compared as instants: a touch's window runs from
its send to the customer's next touch. The first human reply in it (not automatic, not a bounce)
gives the touch its `reply_label` (None for an SMS keyword such as STOP, which triage does not
label).

A touch's `outcome` is the first that holds of: `paid` (every invoice it covered was paid in its
window), `partly_paid` (money came in, not all of it), `replied`, `escalated`, `nothing`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import median_low
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from bot.core.models import (
    Customer,
    Escalation,
    InboundMessage,
    Invoice,
    Reminder,
    ReminderInvoice,
)
from bot.core.vocabulary import TIERS
from bot.learning.metrics import (
    CLOSED,
    PAYMENT,
    InvoiceHistory,
    load_histories,
    local_day,
    start_of,
)
from bot.learning.metrics import percent as percent_of

OUTCOMES = ("paid", "partly_paid", "replied", "escalated", "nothing")
PAID_WITHIN_DAYS = (7, 14, 30)
NOT_HUMAN_LABELS = ("bounce",)
ZERO = Decimal(0)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TouchOutcome:
    reminder_id: int
    customer_id: int
    tier: str
    step_key: str
    channel: str
    sent_at: datetime
    sent_on: date  # in the business's timezone
    day: int  # the step's day: planned day minus the earliest due date covered (-3, 0, 7, ...)
    invoice_ids: tuple[int, ...]
    collected: dict[str, Decimal]  # currency -> money credited to this touch
    days_to_paid: int | None  # from the touch to the payment that cleared its last invoice
    replied: bool
    reply_label: str | None
    escalated: bool

    @property
    def paid(self) -> bool:
        return self.days_to_paid is not None

    @property
    def outcome(self) -> str:
        if self.paid:
            return "paid"
        if any(amount > 0 for amount in self.collected.values()):
            return "partly_paid"
        if self.replied:
            return "replied"
        return "escalated" if self.escalated else "nothing"


@dataclass(frozen=True, slots=True)
class _Touch:
    reminder_id: int
    customer_id: int
    tier: str
    step_key: str
    channel: str
    sent_at: datetime
    sent_on: date
    day: int
    invoice_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Credit:
    collected: dict[int, dict[str, Decimal]]  # reminder id -> currency -> amount
    cleared: dict[int, dict[int, date]]  # reminder id -> invoice id -> the day it was paid


def outcomes(
    session: Session, since: date, until: date, timezone: str = "UTC"
) -> list[TouchOutcome]:
    """What followed each reminder sent from `since` to `until` (days in `timezone`, both
    included), in the order they were sent. What came after `until` counts too: later touches
    close windows, later payments and replies still follow these touches."""
    zone = ZoneInfo(timezone)
    start, end = start_of(since, zone), start_of(until + timedelta(days=1), zone)
    in_range = (Reminder.state == "sent") & (Reminder.sent_at >= start) & (Reminder.sent_at < end)
    customers = select(Reminder.customer_id).where(in_range)
    # Touches before `since` cannot change these: money and replies before a touch are never its.
    # Later ones can: they close windows.
    touches = _touches(
        session, Reminder.customer_id.in_(customers) & (Reminder.sent_at >= start), zone
    )
    covered = (
        select(ReminderInvoice.invoice_id)
        .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
        .where(in_range)
    )
    histories = load_histories(session, Invoice.id.in_(covered), timezone)
    credit = _credit(_by(touches, lambda t: t.invoice_ids), histories)
    by_customer = _by(touches, lambda t: (t.customer_id,))
    replies = _first_in_window(by_customer, _human_replies(session, customers, start))
    escalations = _first_in_window(by_customer, _escalations(session, customers, start))
    return [
        _outcome(touch, histories, credit, replies, escalations)
        for touch in touches
        if start <= touch.sent_at < end
    ]


def _touches(session: Session, which: ColumnElement[bool], zone: ZoneInfo) -> list[_Touch]:
    """Every sent reminder that `which` selects, with the invoices it covered, oldest first."""
    rows = session.execute(
        select(
            Reminder.id,
            Reminder.customer_id,
            Customer.tier,
            Reminder.step_key,
            Reminder.channel,
            Reminder.sent_at,
            Reminder.plan_date,
            ReminderInvoice.invoice_id,
            ReminderInvoice.due_date,
        )
        .join(Customer, Customer.id == Reminder.customer_id)
        .join(ReminderInvoice, ReminderInvoice.reminder_id == Reminder.id)
        .where(Reminder.state == "sent", Reminder.sent_at.is_not(None), which)
        .order_by(Reminder.sent_at, Reminder.id, ReminderInvoice.invoice_id)
    )
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.id, []).append(row)
    return [_touch(parts, zone) for parts in grouped.values()]


def _touch(parts: list[Any], zone: ZoneInfo) -> _Touch:
    first = parts[0]
    return _Touch(
        reminder_id=first.id,
        customer_id=first.customer_id,
        tier=first.tier,
        step_key=first.step_key,
        channel=first.channel or "none",
        sent_at=first.sent_at,
        sent_on=local_day(first.sent_at, zone),
        day=(first.plan_date - min(p.due_date for p in parts)).days,
        invoice_ids=tuple(p.invoice_id for p in parts),
    )


def _by(
    touches: Sequence[_Touch], keys: Callable[[_Touch], Iterable[int]]
) -> dict[int, list[_Touch]]:
    """Touches under each of their keys (invoice ids, or the customer id), in sending order."""
    found: dict[int, list[_Touch]] = defaultdict(list)
    for touch in touches:
        for key in keys(touch):
            found[key].append(touch)
    return found


def _last_sent_by_day(touches: list[_Touch], day: date) -> _Touch | None:
    """The last touch sent on or before `day`; None when the first came after it."""
    index = bisect_right([t.sent_on for t in touches], day) - 1
    return touches[index] if index >= 0 else None


def _credit(by_invoice: dict[int, list[_Touch]], histories: dict[int, InvoiceHistory]) -> _Credit:
    collected: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    cleared: dict[int, dict[int, date]] = defaultdict(dict)
    for invoice_id, history in histories.items():
        touches = by_invoice.get(invoice_id, [])
        for move in history.moves:
            touch = _last_sent_by_day(touches, move.on)
            if touch is not None and move.kind in (PAYMENT, CLOSED):
                collected[touch.reminder_id][history.currency] += move.amount
        paid_on = history.paid_on()
        touch = _last_sent_by_day(touches, paid_on) if paid_on is not None else None
        if touch is not None and paid_on is not None:
            cleared[touch.reminder_id][invoice_id] = paid_on
    return _Credit(collected=collected, cleared=cleared)


def _human_replies(
    session: Session, customers: Select[int], since: datetime
) -> Iterable[tuple[int | None, datetime, str | None]]:
    rows = session.execute(
        select(InboundMessage.customer_id, InboundMessage.received_at, InboundMessage.label)
        .where(
            InboundMessage.customer_id.in_(customers),
            InboundMessage.received_at >= since,
            InboundMessage.automatic.is_(False),
            InboundMessage.label.is_(None) | InboundMessage.label.not_in(NOT_HUMAN_LABELS),
        )
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    return [(customer_id, at, label) for customer_id, at, label in rows]


def _escalations(
    session: Session, customers: Select[int], since: datetime
) -> Iterable[tuple[int | None, datetime, str]]:
    rows = session.execute(
        select(Escalation.customer_id, Escalation.opened_at, Escalation.reason)
        .where(Escalation.customer_id.in_(customers), Escalation.opened_at >= since)
        .order_by(Escalation.opened_at, Escalation.id)
    )
    return [(customer_id, at, reason) for customer_id, at, reason in rows]


def _first_in_window(
    by_customer: dict[int, list[_Touch]], happenings: Iterable[tuple[int | None, datetime, T]]
) -> dict[int, T]:
    """Reminder id -> what happened first between that touch and the customer's next one."""
    first: dict[int, T] = {}
    for customer_id, at, what in happenings:
        touches = by_customer.get(customer_id, []) if customer_id is not None else []
        index = bisect_right([t.sent_at for t in touches], at) - 1
        if index >= 0:
            first.setdefault(touches[index].reminder_id, what)
    return first


def _outcome(
    touch: _Touch,
    histories: dict[int, InvoiceHistory],
    credit: _Credit,
    replies: dict[int, str | None],
    escalations: dict[int, str],
) -> TouchOutcome:
    owed = [i for i in touch.invoice_ids if i in histories]  # void invoices are owed by nobody
    cleared = credit.cleared.get(touch.reminder_id, {})
    days_to_paid = None
    if owed and all(i in cleared for i in owed):
        days_to_paid = max((cleared[i] - touch.sent_on).days for i in owed)
    collected = credit.collected.get(touch.reminder_id, {})
    return TouchOutcome(
        reminder_id=touch.reminder_id,
        customer_id=touch.customer_id,
        tier=touch.tier,
        step_key=touch.step_key,
        channel=touch.channel,
        sent_at=touch.sent_at,
        sent_on=touch.sent_on,
        day=touch.day,
        invoice_ids=touch.invoice_ids,
        collected={code: amount for code, amount in sorted(collected.items()) if amount != 0},
        days_to_paid=days_to_paid,
        replied=touch.reminder_id in replies,
        reply_label=replies.get(touch.reminder_id),
        escalated=touch.reminder_id in escalations,
    )


# --- How each step does ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRow:
    tier: str
    step_key: str
    channel: str
    day: int  # the step's usual day relative to the due date
    touches: int
    paid_within: dict[int, int]  # days (7, 14, 30) -> touches fully paid within that many days
    replied: int
    escalated: int
    collected: dict[str, Decimal]  # currency -> money credited to these touches

    def paid_percent(self, days: int) -> Decimal | None:
        return percent_of(self.paid_within[days], self.touches)

    @property
    def reply_percent(self) -> Decimal | None:
        return percent_of(self.replied, self.touches)

    @property
    def escalation_percent(self) -> Decimal | None:
        return percent_of(self.escalated, self.touches)


def effectiveness(touches: Iterable[TouchOutcome]) -> list[StepRow]:
    """One row per (tier, step, channel): tiers in their usual order, then steps by their day."""
    groups: dict[tuple[str, str, str], list[TouchOutcome]] = defaultdict(list)
    for touch in touches:
        groups[(touch.tier, touch.step_key, touch.channel)].append(touch)
    rows = [_row(key, members) for key, members in groups.items()]
    return sorted(rows, key=_row_order)


def _row(key: tuple[str, str, str], members: list[TouchOutcome]) -> StepRow:
    collected: dict[str, Decimal] = defaultdict(Decimal)
    for touch in members:
        for currency, amount in touch.collected.items():
            collected[currency] += amount
    return StepRow(
        tier=key[0],
        step_key=key[1],
        channel=key[2],
        day=median_low(t.day for t in members),
        touches=len(members),
        paid_within={
            days: sum(1 for t in members if t.days_to_paid is not None and t.days_to_paid <= days)
            for days in PAID_WITHIN_DAYS
        },
        replied=sum(1 for t in members if t.replied),
        escalated=sum(1 for t in members if t.escalated),
        collected=dict(sorted(collected.items())),
    )


def _row_order(row: StepRow) -> tuple[int, int, str, str]:
    tier = TIERS.index(row.tier) if row.tier in TIERS else len(TIERS)
    return (tier, row.day, row.step_key, row.channel)
