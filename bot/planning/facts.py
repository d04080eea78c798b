"""Everything the planner looks at, read in a few queries: open invoices, their customers and
contacts, and the history that decides what is already done, pending or too soon."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from bot.core.bulk_rows import read_rows
from bot.core.models import (
    Contact,
    Customer,
    Escalation,
    Event,
    InboundMessage,
    Invoice,
    Reminder,
    ReminderInvoice,
)
from bot.core.vocabulary import TOUCHED, WAITING_OR_SENDING
from bot.escalations.plans import NextInstalment, next_instalments
from bot.learning.guardrail_holds import active_holds
from bot.payments.in_review import customers_in_review

# Core columns (Table.c), not ORM attributes: rows then skip the ORM's result machinery, which is
# most of the cost at 100,000 invoices.
INV: Any = Invoice.__table__.c
CON: Any = Contact.__table__.c
CUS: Any = Customer.__table__.c
LINK: Any = ReminderInvoice.__table__.c
REM: Any = Reminder.__table__.c
CHUNK = 2000  # rows fetched at a time


@dataclass(frozen=True, slots=True)
class ContactFacts:
    id: int
    name: str | None
    email: str | None
    phone: str | None
    role: str
    timezone: str | None
    sms_consent: bool
    email_blocked: bool  # opted out or unusable (bounced)
    sms_blocked: bool
    language: str | None = None  # BCP 47 tag; None: the customer's


class InvoiceFacts(NamedTuple):
    """One open invoice as the planner sees it. A named tuple, not a dataclass: a plan builds one
    for each of hundreds of thousands of rows, straight from the row's own values."""

    id: int
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    balance: Decimal
    disputed: bool
    promise_date: date | None
    payment_plan: bool
    payment_link: str | None


@dataclass(slots=True)
class CustomerFacts:
    id: int
    external_id: str
    name: str
    tier: str
    tags: list[str]
    never_automate: bool
    paused_until: datetime | None
    timezone: str | None
    owner_slack_id: str | None
    contacts: list[ContactFacts] = field(default_factory=list)
    language: str | None = None  # BCP 47 tag; None: English
    invoices: list[InvoiceFacts] = field(default_factory=list)


@dataclass
class History:
    done: set[tuple[int, str, date]] = field(default_factory=set)  # (invoice, step, due date)
    pending: set[int] = field(default_factory=set)  # customers with a reminder awaiting its send
    last_touch: dict[int, datetime] = field(default_factory=dict)  # customer -> last touch
    touches: dict[int, int] = field(default_factory=dict)  # invoice -> unanswered touches
    escalated: set[int] = field(default_factory=set)  # customers with an open escalation
    planned_days: set[tuple[int, date]] = field(default_factory=set)  # (customer, plan date)
    instalments: dict[int, NextInstalment] = field(default_factory=dict)  # customer -> next one
    control: dict[int, datetime] = field(default_factory=dict)  # control group -> since when
    guarded: dict[int, str] = field(default_factory=dict)  # customer -> a guardrail hold
    in_review: set[int] = field(default_factory=set)  # a bank payment to them waits for a person


def load_customers(session: Session) -> list[CustomerFacts]:
    """Customers with at least one open invoice (a zero balance is held back as paid)."""
    return list(stream_customers(session))


def stream_customers(session: Session) -> Iterator[CustomerFacts]:
    """`load_customers` one customer at a time, in the order of their ids: the customers, their
    open invoices and their contacts are read side by side, each in that order (on PostgreSQL
    through server-side cursors), so that only one customer's facts are held at once."""
    invoices = _grouped(
        session,
        open_invoices_query(scan=_scanning_is_cheaper(session)),
        shared=(3, 4, 5),  # the dates and the currency: a few distinct values, held once each
    )
    contacts = _grouped(
        session,
        select(
            CON.customer_id,
            CON.id,
            CON.name,
            CON.email,
            CON.phone,
            CON.role,
            CON.timezone,
            CON.sms_consent,
            CON.email_opted_out_at,
            CON.email_unusable_at,
            CON.sms_opted_out_at,
            CON.sms_unusable_at,
            CON.language,
        ).order_by(CON.customer_id, CON.id),
    )
    customers = read_rows(
        session,
        select(
            CUS.id,
            CUS.external_id,
            CUS.name,
            CUS.tier,
            CUS.tags,
            CUS.never_automate,
            CUS.paused_until,
            CUS.timezone,
            CUS.owner_slack_id,
            CUS.language,
        ).order_by(CUS.id),
        CHUNK,
    )
    next_contacts: tuple[int, list[Any]] | None = next(contacts, None)
    for customer_id, invoice_rows in invoices:
        row = next(r for r in customers if r[0] == customer_id)  # ids ascend in both
        own: list[Any] = []
        while next_contacts is not None and next_contacts[0] <= customer_id:
            if next_contacts[0] == customer_id:
                own = next_contacts[1]
            next_contacts = next(contacts, None)
        (
            _id,
            external_id,
            name,
            tier,
            tags,
            never_automate,
            paused_until,
            timezone,
            owner,
            language,
        ) = row
        yield CustomerFacts(
            id=customer_id,
            external_id=external_id,
            name=name,
            tier=tier,
            tags=list(tags or []),  # a copy: read_rows shares equal values
            never_automate=never_automate,
            paused_until=paused_until,
            timezone=timezone,
            owner_slack_id=owner,
            language=language,
            contacts=[
                ContactFacts(
                    id=contact_id,
                    name=contact_name,
                    email=email,
                    phone=phone,
                    role=role,
                    timezone=contact_zone,
                    sms_consent=sms_consent,
                    email_blocked=email_opted_out is not None or email_unusable is not None,
                    sms_blocked=sms_opted_out is not None or sms_unusable is not None,
                    language=contact_language,
                )
                for (
                    _customer,
                    contact_id,
                    contact_name,
                    email,
                    phone,
                    role,
                    contact_zone,
                    sms_consent,
                    email_opted_out,
                    email_unusable,
                    sms_opted_out,
                    sms_unusable,
                    contact_language,
                ) in own
            ],
            invoices=sorted(
                [_invoice(InvoiceFacts, row[1:]) for row in invoice_rows], key=_DUE_ORDER
            ),
        )
    customers.close()


def open_invoices_query(scan: bool = False) -> Select[Any]:
    """The open invoices, a customer at a time: its id, then an InvoiceFacts' values in the order
    of its fields (each row is made one with `tuple.__new__`, which checks nothing). A query whose
    columns no longer match the fields fails here, once, rather than mislabelling every value.
    `scan`: the status is compared as an expression, which SQLite cannot look up in an index, so
    that it reads the invoices in the order of their customers instead of each open one apart."""
    status: Any = INV.status.concat("") if scan else INV.status
    query = (
        select(
            INV.customer_id,
            INV.id,
            INV.number,
            INV.issue_date,
            INV.due_date,
            INV.currency,
            INV.total,
            INV.balance,
            INV.disputed,
            INV.promise_date,
            INV.payment_plan,
            INV.payment_link,
        )
        .where(status == "open")
        .order_by(INV.customer_id, INV.id)
    )
    names = tuple(column.name for column in query.selected_columns)[1:]
    if names != InvoiceFacts._fields:
        raise TypeError(f"the open invoices' columns {names} are not InvoiceFacts' fields")
    return query


def _scanning_is_cheaper(session: Session) -> bool:
    """Whether SQLite reads the open invoices faster without the index on their status: it takes
    that index whenever it can (it keeps no statistics), looks each open invoice up in the table
    apart and sorts them all by customer, where a pass in the order of the invoices' unique key
    (customer, number) sorts only each customer's few. So when at least half the invoices are
    open (two counts, a few milliseconds), it passes over them all."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    total = session.execute(select(func.count()).select_from(Invoice.__table__)).scalar_one()
    open_ = session.execute(
        select(func.count()).select_from(Invoice.__table__).where(INV.status == "open")
    ).scalar_one()
    return bool(open_ * 2 >= total)


# An InvoiceFacts from the values of a row, in the order of its fields (no keyword parsing).
_invoice = tuple.__new__
_DUE_ORDER = attrgetter("due_date", "number")  # a customer's invoices, oldest due first


def _grouped(
    session: Session, query: Select[Any], shared: tuple[int, ...] = ()
) -> Iterator[tuple[int, list[Any]]]:
    """The rows of `query` (ordered by its first column, a customer id) a customer at a time."""
    rows = read_rows(session, query, CHUNK, shared)
    try:
        for customer_id, group in groupby(rows, key=itemgetter(0)):
            yield customer_id, list(group)
    finally:
        rows.close()


def in_review(session: Session) -> set[int]:
    """The customers an open payment review offers a bank payment to (any of its candidates), and
    those the payment's payer name names, as the matcher reads it (a review with no candidate,
    such as one whose reference names a settled invoice, still holds the payer): until a person
    places it, what they owe may already be paid (bot/payments/in_review.py)."""
    return customers_in_review(session)


def load_history(session: Session) -> History:
    history = History()
    sent_touches: list[tuple[int, int, datetime]] = []  # (customer, invoice, when)
    rows = session.execute(
        select(
            LINK.invoice_id,
            LINK.step_key,
            LINK.due_date,
            REM.customer_id,
            REM.state,
            REM.action,
            REM.sent_at,
            REM.updated_at,
        ).join(Reminder, REM.id == LINK.reminder_id)
    )
    for invoice_id, step_key, due_date, customer_id, state, action, sent_at, updated_at in rows:
        history.done.add((invoice_id, step_key, due_date))
        if state in WAITING_OR_SENDING:
            history.pending.add(customer_id)
        if action == "remind" and state in TOUCHED:
            when = sent_at or updated_at
            sent_touches.append((customer_id, invoice_id, when))
            if when > history.last_touch.get(customer_id, when.min.replace(tzinfo=when.tzinfo)):
                history.last_touch[customer_id] = when
    history.planned_days = {
        (customer_id, day)
        for customer_id, day in session.execute(select(REM.customer_id, REM.plan_date).distinct())
    }
    history.escalated = set(
        session.scalars(select(Escalation.customer_id).where(Escalation.state != "resolved"))
    )
    # A reply from the customer, or money arriving on the invoice, answers the touches before it.
    replied = dict(
        session.execute(
            select(InboundMessage.customer_id, func.max(InboundMessage.received_at))
            .where(InboundMessage.automatic.is_(False), InboundMessage.customer_id.is_not(None))
            .group_by(InboundMessage.customer_id)
        ).all()
    )
    paid = dict(
        session.execute(
            select(Event.invoice_id, func.max(Event.at))
            .where(
                Event.kind.in_(("invoice.balance_changed", "payment.allocated")),
                Event.invoice_id.is_not(None),
            )
            .group_by(Event.invoice_id)
        ).all()
    )
    history.instalments = next_instalments(session)
    history.guarded = active_holds(session)
    history.in_review = in_review(session)
    for customer_id, invoice_id, when in sent_touches:
        answered = max(filter(None, (replied.get(customer_id), paid.get(invoice_id))), default=None)
        if answered is None or when > answered:
            history.touches[invoice_id] = history.touches.get(invoice_id, 0) + 1
    return history
