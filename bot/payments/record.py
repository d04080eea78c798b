"""Money arriving and, rarely, going back: record a payment once, allocate it to open invoices,
close what it pays, and stop every reminder still waiting for those invoices.

Whatever the source (a Stripe webhook, the bank feed, a ledger sync), a payment goes through
`record_payment`, so the same guards hold everywhere: a payment is stored once per
(source, external id); an allocation never exceeds the invoice's balance nor the payment; a closed
invoice's planned and approved reminders are cancelled with reason `paid` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.core import audit
from bot.core.bulk_rows import among
from bot.core.locks import serialise_ledger_writes
from bot.core.models import Invoice, Payment, PaymentAllocation, Reminder, ReminderInvoice
from bot.core.vocabulary import WAITING, WAITING_OR_SENDING, InvoiceStatus
from bot.ledger.bulk import chunks
from bot.reminders import state

PAID = "paid"  # why a reminder is cancelled: the invoices it covers are closed, one at least paid
VOIDED = "voided"  # ... all of them voided (or deleted) in the ledger


@dataclass
class PaymentOutcome:
    payment_id: int | None = None
    duplicate: bool = False
    allocated: Decimal = Decimal(0)
    unapplied: Decimal = Decimal(0)
    closed: list[int] = field(default_factory=list)  # invoice ids now paid
    reduced: list[int] = field(default_factory=list)  # invoice ids paid in part
    reopened: list[int] = field(default_factory=list)  # invoice ids a refund reopened
    cancelled: list[int] = field(default_factory=list)  # reminder ids
    customers: set[int] = field(default_factory=set)
    # The currencies of open invoices it named but could not pay: the payment's currency differs.
    other_currencies: set[str] = field(default_factory=set)

    @property
    def touched_reminders(self) -> list[int]:
        return self.cancelled


def record_payment(
    session: Session,
    *,
    source: str,
    external_id: str,
    customer_id: int | None,
    received_on: date,
    amount: Decimal,
    currency: str,
    invoice_ids: Sequence[int],
    now: datetime,
    reference: str | None = None,
    payer: str | None = None,
    amounts: Sequence[Decimal] | None = None,
    actor: str = audit.SYSTEM,
    known_new: bool = False,
    cancel: bool = True,
) -> PaymentOutcome:
    """Store the payment and allocate it to `invoice_ids`: oldest due first, each up to its
    balance, or exactly `amounts` (one per invoice, still capped) when the source said how it was
    split. A second call with the same (source, external_id) changes nothing (the unique key
    holds even when a caller that checked already passes `known_new`). `cancel=False` leaves the
    waiting reminders to the caller, who cancels once for a whole batch."""
    outcome = PaymentOutcome()
    serialise_ledger_writes(session)
    existing = (
        None
        if known_new
        else session.scalar(
            select(Payment.id).where(Payment.source == source, Payment.external_id == external_id)
        )
    )
    if existing is not None:
        outcome.payment_id, outcome.duplicate = existing, True
        return outcome
    values = {
        "source": source,
        "external_id": external_id,
        "customer_id": customer_id,
        "received_on": received_on,
        "amount": amount,
        "currency": currency,
        "reference": reference,
        "payer": payer,
        "created_at": now,
    }
    # Inserted on its own (not through a flush of everything pending), so a caller recording a
    # whole bank file under no_autoflush writes the allocations and events in bulk at the end.
    payment_id = session.execute(insert(Payment).values(values).returning(Payment.id)).scalar_one()
    payment = Payment(id=payment_id, **values)  # what was stored, to allocate from
    outcome.payment_id = payment.id
    allocate(session, payment, invoice_ids, now, amounts, actor, outcome, left=amount)
    audit.record(
        session,
        now,
        "payment.received",
        actor=actor,
        customer_id=customer_id,
        payload={
            "source": source,
            "external_id": external_id,
            "amount": str(amount),
            "currency": currency,
            "allocated": str(outcome.allocated),
            "unapplied": str(outcome.unapplied),
            "reference": reference,
        },
    )
    if cancel:
        outcome.cancelled = cancel_for_invoices(session, outcome.closed + outcome.reduced, now)
    return outcome


def allocate(
    session: Session,
    payment: Payment,
    invoice_ids: Sequence[int],
    now: datetime,
    amounts: Sequence[Decimal] | None = None,
    actor: str = audit.SYSTEM,
    outcome: PaymentOutcome | None = None,
    left: Decimal | None = None,
) -> PaymentOutcome:
    """Allocate what is left of a stored payment to these invoices (a person's pick of a bank
    payment under review goes through here); never more than the payment's unallocated rest."""
    outcome = outcome or PaymentOutcome(payment_id=payment.id)
    if left is None:  # a stored payment: what earlier allocations have not taken
        already = session.scalar(
            select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
                PaymentAllocation.payment_id == payment.id
            )
        )
        left = payment.amount - Decimal(already or 0)
    split = _split(session, invoice_ids, left, payment.currency, amounts, outcome.other_currencies)
    for invoice, share in split:
        _allocate(session, payment, invoice, share, now, actor, outcome)
    outcome.unapplied = left - outcome.allocated
    if payment.customer_id is None and outcome.customers:
        payment.customer_id = min(outcome.customers)
        session.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(customer_id=payment.customer_id)
            .execution_options(synchronize_session=False)
        )
    return outcome


def _split(
    session: Session,
    invoice_ids: Sequence[int],
    amount: Decimal,
    currency: str,
    amounts: Sequence[Decimal] | None,
    other_currencies: set[str],
) -> list[tuple[Invoice, Decimal]]:
    """Each open invoice named in `currency` with its share of `amount`. An open invoice in
    another currency gets none (money is never converted here): its currency is added to
    `other_currencies`, for the caller to say why the payment was not applied."""
    invoices = {
        i.id: i
        for i in session.scalars(
            select(Invoice).where(Invoice.id.in_(list(invoice_ids))).with_for_update()
        )
    }
    left = amount
    out: list[tuple[Invoice, Decimal]] = []
    if amounts is not None:
        pairs = [(invoices.get(i), a) for i, a in zip(invoice_ids, amounts, strict=True)]
    else:
        ordered = sorted(invoices.values(), key=lambda i: (i.due_date, i.id))
        pairs = [(i, i.balance) for i in ordered]
    for invoice, asked in pairs:
        if invoice is None or invoice.status != "open":
            continue
        if invoice.currency != currency:
            other_currencies.add(invoice.currency)
            continue
        share = min(asked, invoice.balance, left)
        if share <= 0:
            continue
        out.append((invoice, share))
        left -= share
    return out


def unapplied_why(outcome: PaymentOutcome, currency: str) -> str:
    """Why some of a payment in `currency` could not be applied, and what a person does: its
    invoices are in another currency (named), or they were already paid or changed."""
    if outcome.other_currencies:
        theirs = " and ".join(sorted(outcome.other_currencies))
        return (
            f"it was paid in {currency}, but its invoices are in {theirs}, so they stay open "
            "(arbot never converts one currency into another). Refund it and ask for a payment "
            f"in {theirs}, or record it in the ledger at the rate the bank used."
        )
    return "its invoices were already paid (or changed). A refund may be owed."


def _allocate(
    session: Session,
    payment: Payment,
    invoice: Invoice,
    share: Decimal,
    now: datetime,
    actor: str,
    outcome: PaymentOutcome,
) -> None:
    # Conditional on the balance still covering the share: a concurrent payment that got there
    # first leaves this one unapplied rather than driving a balance below zero.
    changed = session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.status == "open", Invoice.balance >= share)
        .values(balance=Invoice.balance - share, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return
    # What the database now holds, without another round trip (and without marking it dirty).
    set_committed_value(invoice, "balance", invoice.balance - share)
    session.add(PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id, amount=share))
    outcome.allocated += share
    outcome.customers.add(invoice.customer_id)
    payload = {
        "number": invoice.number,
        "currency": invoice.currency,
        "amount": str(share),
        "balance_after": str(invoice.balance),
        "payment": f"{payment.source}:{payment.external_id}",
    }
    audit.record(
        session,
        now,
        "payment.allocated",
        actor=actor,
        customer_id=invoice.customer_id,
        invoice_id=invoice.id,
        payload=payload,
    )
    if invoice.balance == 0:
        invoice.status, invoice.paid_at = "paid", now
        outcome.closed.append(invoice.id)
        audit.record(
            session,
            now,
            "invoice.paid",
            actor=actor,
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            payload={**payload, "source": payment.source},
        )
    else:
        outcome.reduced.append(invoice.id)


def cancel_for_invoices(
    session: Session, invoice_ids: Sequence[int], now: datetime, changed: str = "superseded"
) -> list[int]:
    """Cancel every waiting reminder that covers one of these invoices: `voided` when all its
    invoices are void (the ledger voided or deleted them), `paid` when they are all closed and
    one at least was paid, else `changed`: `superseded` when an amount it quotes changed (a
    ledger import says `due_date_changed` or `total_changed` when that is what changed); one the
    send worker has claimed (`sending`) is asked to stop with the same reason
    (bot/reminders/state.py). A few statements however many invoices a bank file paid."""
    if not invoice_ids:
        return []
    waiting: dict[int, None] = {}  # reminder ids, in the order found
    for covering in among(session, ReminderInvoice.invoice_id, list(dict.fromkeys(invoice_ids))):
        waiting.update(
            dict.fromkeys(
                session.scalars(
                    select(ReminderInvoice.reminder_id)
                    .join(Reminder, Reminder.id == ReminderInvoice.reminder_id)
                    .where(covering, Reminder.state.in_(WAITING_OR_SENDING))
                    .distinct()
                )
            )
        )
    statuses: dict[int, set[str]] = {}  # reminder id -> the statuses of the invoices it covers
    for of_waiting in among(session, ReminderInvoice.reminder_id, list(waiting)):
        for reminder_id, status in session.execute(
            select(ReminderInvoice.reminder_id, Invoice.status)
            .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
            .where(of_waiting)
            .distinct()
        ):
            statuses.setdefault(reminder_id, set()).add(status)
    reasons = {r: _closed_or(statuses.get(r, set()), changed) for r in waiting}
    # Each reason's cancel (and each part of one) locks its reminders in turn: all of them are
    # locked first, in one ordered pass (state.lock_cancellable).
    state.lock_cancellable(session, among(session, Reminder.id, list(waiting)), WAITING)
    cancelled: list[int] = []
    for reason in (changed, PAID, VOIDED):
        for part in chunks([r for r in waiting if reasons[r] == reason]):
            cancelled += state.cancel(
                session,
                part,
                from_states=WAITING,
                reason=reason,
                now=now,
                refresh_loaded=False,
            )
    return cancelled


def covering(session: Session, invoice_ids: Sequence[int]) -> list[ColumnElement[bool]]:
    """Conditions that, any one of them, choose reminders covering one of these invoices, and
    together all of them, as `cancel_for_invoices` finds them (one on PostgreSQL; none for no
    invoices)."""
    return [
        Reminder.id.in_(select(ReminderInvoice.reminder_id).where(of_invoices))
        for of_invoices in among(session, ReminderInvoice.invoice_id, list(invoice_ids))
    ]


def _closed_or(statuses: set[str], changed: str) -> str:
    """Why a waiting reminder covering invoices of these statuses stops: `changed` while one is
    still open; `voided` when the ledger voided every one (nothing was paid: `paid` would not be
    true); else `paid`, for what one payment at least closed."""
    if InvoiceStatus.OPEN in statuses:
        return changed
    return why_closed(statuses)


def why_closed(statuses: Collection[str]) -> str:
    """Why a reminder about closed invoices of these statuses stops (bot/reminders/stale.py asks
    too): `voided` when the ledger voided every one, else `paid`."""
    return VOIDED if set(statuses) == {InvoiceStatus.VOID} else PAID


def refund(
    session: Session,
    *,
    source: str,
    payment_external_id: str,
    refunded_total: Decimal,
    now: datetime,
    received_on: date,
    refund_id: str,
) -> PaymentOutcome:
    """Give back what a refund takes: `refunded_total` is everything refunded on that payment so
    far (Stripe's `amount_refunded`), so a repeat or an out-of-order event reverses nothing twice.
    The newest allocations are reversed first; an invoice with a balance again is reopened. The
    refund's negative payment is dated `received_on`, the business's day."""
    outcome = PaymentOutcome()
    serialise_ledger_writes(session)  # two refund events at once must not both reverse
    payment = session.scalars(
        select(Payment)
        .where(Payment.source == source, Payment.external_id == payment_external_id)
        .with_for_update()
    ).first()
    if payment is None:
        return outcome
    outcome.payment_id = payment.id
    reversed_so_far = -(
        session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.source == source,
                Payment.external_id.startswith(f"{payment_external_id}:refund:", autoescape=True),
            )
        )
        or Decimal(0)
    )
    # What the payment left unapplied (an overpayment) is given back first: refunding it must
    # not reopen an invoice that is paid.
    applied = session.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
            PaymentAllocation.payment_id == payment.id
        )
    )
    unapplied = payment.amount - Decimal(applied or 0)
    from_invoices = max(min(refunded_total, payment.amount) - unapplied, Decimal(0))
    todo = from_invoices - Decimal(reversed_so_far)
    if todo <= 0:  # nothing (more) to take back from invoices
        outcome.duplicate = True
        return outcome
    back = Payment(
        source=source,
        external_id=f"{payment_external_id}:refund:{refund_id}",
        customer_id=payment.customer_id,
        received_on=received_on,
        amount=-todo,
        currency=payment.currency,
        reference=f"refund of {payment_external_id}",
        created_at=now,
    )
    session.add(back)
    session.flush()
    allocations = session.execute(
        select(PaymentAllocation, Invoice)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(PaymentAllocation.payment_id == payment.id)
        .order_by(PaymentAllocation.id.desc())
    ).all()
    already = _reversed_by_invoice(session, source, payment_external_id)
    left = todo
    for allocation, invoice in allocations:
        available = allocation.amount - already.get(invoice.id, Decimal(0))
        share = min(available, left)
        if share <= 0:
            continue
        left -= share
        invoice.balance += share
        invoice.updated_at = now
        session.add(PaymentAllocation(payment_id=back.id, invoice_id=invoice.id, amount=-share))
        outcome.customers.add(invoice.customer_id)
        if invoice.status == "paid":
            invoice.status, invoice.paid_at = "open", None
            outcome.reopened.append(invoice.id)
        audit.record(
            session,
            now,
            "invoice.reopened" if invoice.id in outcome.reopened else "invoice.balance_changed",
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            payload={
                "number": invoice.number,
                "currency": invoice.currency,
                "refunded": str(share),
                "balance_after": str(invoice.balance),
                "payment": f"{source}:{payment_external_id}",
            },
        )
    return outcome


def _reversed_by_invoice(
    session: Session, source: str, payment_external_id: str
) -> dict[int, Decimal]:
    rows = session.execute(
        select(PaymentAllocation.invoice_id, func.sum(PaymentAllocation.amount))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(
            Payment.source == source,
            Payment.external_id.startswith(f"{payment_external_id}:refund:", autoescape=True),
        )
        .group_by(PaymentAllocation.invoice_id)
    ).all()
    return {invoice_id: -Decimal(total) for invoice_id, total in rows}
