"""`arbot import-payments`: a bank-feed export matched to open invoices.

A payment is applied by itself only when exactly one match exists (see bot/payments/reconcile.py);
otherwise it is stored unapplied with a PaymentReview listing the candidates, for a person to
pick in Slack. What an applied payment leaves over (more than its invoices owed) is kept
unapplied and handed to a person in the customer's escalation (`payment_unapplied`, as Stripe's). A payment is identified by its fingerprint, so re-importing a file changes nothing.
The whole file is matched first, then stored in a few statements (bot/payments/bulk_record.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import new_ids, read_rows
from bot.core.errors import UserError
from bot.core.locks import serialise_ledger_writes
from bot.core.models import Customer, Invoice, Payment, PaymentReview
from bot.core.money import decimal_str, format_money
from bot.escalations import service
from bot.ledger.bulk import core_table, cycles_collected_after, insert_rows
from bot.payments.bulk_record import PaymentsInBulk, stored_external_ids
from bot.payments.reconcile import (
    Allocation,
    Match,
    Matcher,
    OpenInvoice,
    nameable_by,
    normalise_name,
)
from bot.payments.record import PaymentOutcome, allocate, cancel_for_invoices
from integrations.base.payments import BankPayment

SOURCE = "bank"
UNAPPLIED = "payment_unapplied"  # why a person has the account: money kept unapplied
APPLIED = "applied"  # a review's pick applied in full
LEFT_UNMATCHED = "left unmatched"


@dataclass
class BankImportSummary:
    label: str
    applied: int = 0
    to_review: int = 0
    already_imported: int = 0
    amount_applied: dict[str, Decimal] = field(default_factory=dict)
    # What applied payments left over (paid more than their invoices owed), kept unapplied
    amount_unapplied: dict[str, Decimal] = field(default_factory=dict)
    outcome: PaymentOutcome = field(default_factory=PaymentOutcome)
    reviews: list[int] = field(default_factory=list)
    escalations: list[int] = field(default_factory=list)  # opened or added to for the rest
    reviews_posted: int = 0  # of `reviews`, those Slack took with the import
    slack_refused: str | None = None  # why Slack did not take the others (its error code)
    # of `escalations`, those still without a thread in Slack after the import, and why
    escalations_not_posted: int = 0
    escalations_refused: str | None = None
    # why Slack was not fully updated once the payments were stored (the first failure)
    not_told: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.label,
            "applied": self.applied,
            "to_review": self.to_review,
            "reviews_posted": self.reviews_posted,
            "already_imported": self.already_imported,
            "invoices_paid": len(self.outcome.closed),
            "reminders_cancelled": len(self.outcome.cancelled),
            # each currency's decimal text to its own places ("1200.00" USD, "5000" JPY)
            "amount_applied": {
                currency: decimal_str(amount, currency)
                for currency, amount in sorted(self.amount_applied.items())
            },
            "amount_unapplied": {
                currency: decimal_str(amount, currency)
                for currency, amount in sorted(self.amount_unapplied.items())
            },
        }


def open_invoices(
    session: Session, keep: Callable[[Sequence[Any]], bool] | None = None
) -> list[OpenInvoice]:
    """Every open invoice with something left to pay (those `keep` picks by their id, customer id
    and number, when given), read through the driver: each customer's name, currency and due date
    converted once however many invoices share it, and only the invoices kept converted at all."""
    status: ColumnElement[str] = Invoice.status.expression
    if _scanning_is_cheaper(session):
        status = status.concat("")  # an expression, which SQLite cannot look up in an index
    query = (
        select(
            Invoice.id,
            Invoice.customer_id,
            Customer.name,
            Invoice.number,
            Invoice.currency,
            Invoice.balance,
            Invoice.due_date,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(status == "open", Invoice.balance > 0)
    )
    # Every row is read, so through an ordinary cursor: a server-side cursor's plan, made for
    # its first rows, takes up to four times the server's work for them all.
    rows = read_rows(
        session, cast("Select[Any]", query), shared=(2, 4, 6), keep=keep, server_side=False
    )
    return list(map(OpenInvoice._make, rows))


def _scanning_is_cheaper(session: Session) -> bool:
    """Whether SQLite reads the open invoices faster by scanning the whole table than through the
    index on their status: it takes the index whenever it can (it keeps no statistics), and then
    looks each open invoice up in the table apart, about twice a scan's work a row. So when at
    least half the invoices are open (two counts of an index, a few milliseconds), it scans."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    connection = session.connection()
    total = connection.execute(select(func.count()).select_from(Invoice)).scalar_one()
    open_ = connection.execute(
        select(func.count()).select_from(Invoice).where(Invoice.status == "open")
    ).scalar_one()
    return open_ * 2 >= total


def invoices_to_match(
    session: Session, payments: Sequence[BankPayment], names: Mapping[int, Iterable[str]]
) -> list[OpenInvoice]:
    """The open invoices these payments can be matched to, and no others: those of every customer
    a payer's name names (`names`: each customer's names, as the Matcher is given them), and those
    whose number a reference may name (reconcile.nameable_by). The Matcher decides each of these
    payments over them exactly as over the whole book. One read of the open invoices, of which
    only these are converted and indexed."""
    by_name: dict[str, set[int]] = defaultdict(set)
    for customer_id, aliases in names.items():
        for alias in aliases:
            if normalised := normalise_name(alias):
                by_name[normalised].add(customer_id)
    payers: set[int] = set()
    for payer in {p.payer for p in payments}:
        payers.update(by_name.get(normalise_name(payer), ()))
    nameable = nameable_by(p.reference for p in payments)

    def can_match(row: Sequence[Any]) -> bool:  # id, customer id, customer name, number, ...
        return row[1] in payers or nameable(row[3])

    return open_invoices(session, can_match)


def closed_invoices_named(
    session: Session, references: Sequence[str]
) -> tuple[list[OpenInvoice], dict[int, str]]:
    """The closed invoices (paid, voided, written off, or open with nothing left to pay) whose
    number one of these references may name (reconcile.nameable_by), each with a balance of 0,
    and each one's status: a payment naming one goes to a person saying so, rather than to the
    payer's open invoices. Only those named are converted; none are read for no reference."""
    if not any(references):
        return [], {}
    nameable = nameable_by(references)
    query = (
        select(
            Invoice.id,
            Invoice.customer_id,
            Customer.name,
            Invoice.number,
            Invoice.currency,
            Invoice.status,
            Invoice.due_date,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(or_(Invoice.status != "open", Invoice.balance <= 0))
    )
    rows = read_rows(
        session, cast("Select[Any]", query), shared=(2, 4, 6), keep=lambda r: nameable(r[3])
    )
    invoices: list[OpenInvoice] = []
    statuses: dict[int, str] = {}
    for invoice_id, customer_id, name, number, currency, status, due_date in rows:
        invoices.append(
            OpenInvoice(invoice_id, customer_id, name, number, currency, Decimal(0), due_date)
        )
        statuses[invoice_id] = "paid" if status == "open" else status
    return invoices, statuses


def import_payments(
    session: Session,
    payments: list[BankPayment],
    label: str,
    now: datetime,
    routes: Mapping[str, str] | None = None,
) -> BankImportSummary:
    """Match the file's payments in turn against the open invoices, then store them all at once:
    the payments, their allocations, the invoices' new balances, the events and the reviews, each
    in one statement (bot/ledger/bulk.py), inside the caller's transaction. `routes`: the owner of
    each tier's escalations (ARBOT_ESCALATION_ROUTES), for the money a payment leaves over."""
    with cycles_collected_after():
        return _import(session, payments, label, now, dict(routes or {}))


def _import(
    session: Session,
    payments: list[BankPayment],
    label: str,
    now: datetime,
    routes: dict[str, str],
) -> BankImportSummary:
    summary = BankImportSummary(label)
    serialise_ledger_writes(session)  # one import at a time, also on PostgreSQL
    known = stored_external_ids(session, SOURCE, [p.external_id for p in payments])
    # Every customer's name, so a payer who owes nothing is still recognised (and a reference to
    # someone else's invoice goes to a person instead of being applied).
    names = {
        cid: [name]
        for cid, name in session.connection().execute(select(Customer.id, Customer.name)).all()
    }
    fresh = [p for p in payments if p.external_id not in known]
    invoices = invoices_to_match(session, fresh, names)
    references = [p.reference for p in fresh if p.reference]
    closed, statuses = closed_invoices_named(session, references)
    matcher = Matcher(
        [*invoices, *closed], customer_aliases=names, references=references, closed=statuses
    )
    recorded = PaymentsInBulk(SOURCE, invoices, now)  # the closed are never paid
    reviews: list[tuple[str, list[dict[str, Any]]]] = []  # (payment's external id, candidates)
    left_over: list[_LeftOver] = []
    with recorded.events_sent_as_recorded(session):  # the server writes them while we match
        for payment in payments:
            if payment.external_id in known:
                summary.already_imported += 1
                continue
            known.add(payment.external_id)
            decision = matcher.decide(payment)
            match = decision.auto
            if match is not None:
                matcher.apply(match)
                outcome = recorded.pay(payment, match.customer_id, match.allocations)
                _merge(summary.outcome, outcome)
                summary.applied += 1
                summary.amount_applied[payment.currency] = (
                    summary.amount_applied.get(payment.currency, Decimal(0)) + outcome.allocated
                )
                if outcome.unapplied > 0:
                    summary.amount_unapplied[payment.currency] = (
                        summary.amount_unapplied.get(payment.currency, Decimal(0))
                        + outcome.unapplied
                    )
                    left_over.append(_LeftOver(payment, match, outcome.unapplied))
                continue
            recorded.pay(payment, None, ())
            why = decision.review_reason
            candidates = [{**m.as_json(), "why": why} for m in decision.matches]
            reviews.append((payment.external_id, candidates or [{"why": why}]))
            summary.to_review += 1
    payment_ids = recorded.store(session)
    summary.reviews = _store_reviews(session, reviews, payment_ids, now)
    summary.escalations = _hand_over(session, left_over, invoices, routes, now)
    done = summary.outcome
    done.cancelled = cancel_for_invoices(session, done.closed + done.reduced, now)
    return summary


@dataclass(frozen=True)
class _LeftOver:
    """An applied payment's rest: more than the invoices it was matched to owed."""

    payment: BankPayment
    match: Match
    unapplied: Decimal


def _hand_over(
    session: Session,
    left_over: Sequence[_LeftOver],
    invoices: Sequence[OpenInvoice],
    routes: dict[str, str],
    now: datetime,
) -> list[int]:
    """Each payment's rest handed to a person: the customer's escalation opened (or this reason
    added to it) with what is left and what it paid, as a Stripe payment's rest is. A payment is
    imported once, so its rest is handed over once. The escalations' ids."""
    if not left_over:
        return []
    named = {a.invoice_id for rest in left_over for a in rest.match.allocations}
    numbers = {i.id: i.number for i in invoices if i.id in named}
    escalations: list[int] = []
    for rest in left_over:
        payment, currency = rest.payment, rest.payment.currency
        customer = session.get(Customer, rest.match.customer_id)
        assert customer is not None
        paid = ", ".join(
            numbers.get(a.invoice_id, str(a.invoice_id)) for a in rest.match.allocations
        )
        ref = f", ref “{payment.reference}”" if payment.reference else ""
        detail = (
            f"{format_money(rest.unapplied, currency)} of a bank payment of "
            f"{format_money(payment.amount, currency)} on {payment.received_on.isoformat()} from "
            f"{payment.payer or 'an unnamed payer'}{ref} is more than {paid} owed: it is kept "
            "unapplied. A refund (or a credit to the account) may be owed."
        )
        escalation, _ = service.open_or_add(
            session,
            customer.id,
            UNAPPLIED,
            now,
            detail=detail,
            owner=service.owner_for(customer, routes),
        )
        if escalation.id not in escalations:
            escalations.append(escalation.id)
    return escalations


def _store_reviews(
    session: Session,
    reviews: list[tuple[str, list[dict[str, Any]]]],
    payment_ids: dict[str, int],
    now: datetime,
) -> list[int]:
    """One open review a payment that did not match exactly one way; their ids, in file order
    (taken before the rows are written, as the payments' are)."""
    review_ids = new_ids(session, core_table(PaymentReview), len(reviews))
    rows = [
        {
            "id": review_id,
            "payment_id": payment_ids[external_id],
            "candidates": candidates,
            "state": "open",
            "created_at": now,
        }
        for review_id, (external_id, candidates) in zip(review_ids, reviews, strict=True)
    ]
    insert_rows(session, PaymentReview, rows)
    return review_ids


def _merge(total: PaymentOutcome, one: PaymentOutcome) -> None:
    total.closed += one.closed
    total.reduced += one.reduced
    total.cancelled += one.cancelled
    total.customers |= one.customers
    total.allocated += one.allocated


def candidates_of(review: PaymentReview) -> list[Match]:
    return [
        Match(
            rule=c["rule"],
            customer_id=int(c["customer_id"]),
            allocations=tuple(
                Allocation(int(a["invoice_id"]), Decimal(a["amount"])) for a in c["allocations"]
            ),
        )
        for c in review.candidates
        if "rule" in c
    ]


def decide_review(
    session: Session,
    review_id: int,
    choice: int | None,
    user: str,
    now: datetime,
    routes: Mapping[str, str] | None = None,
) -> tuple[str, PaymentOutcome]:
    """A person's pick: candidate `choice` (0-based) is applied, or None leaves it unmatched.
    A review decided before changes nothing (returns who decided it). It waits for a bank import
    in progress, whose matching counts on the balances it read.

    Returns APPLIED, LEFT_UNMATCHED, "already …", or, when the pick left some of the payment
    unapplied (its invoices were paid or changed since the review was made, or the payment is
    more than they owed), the sentence the person is told: how much was applied, how much is
    left unapplied, and that a refund may be owed. That rest goes to the customer's escalation
    (`payment_unapplied`, with `routes` naming its owner), as an import's rest does."""
    serialise_ledger_writes(session)
    review = session.get(PaymentReview, review_id, with_for_update=True)
    if review is None:
        raise UserError(f"payment review {review_id} does not exist")
    if review.state != "open":
        return f"already {review.state} by <@{review.decided_by}>", PaymentOutcome()
    payment = session.get(Payment, review.payment_id)
    assert payment is not None
    review.decided_by, review.decided_at = user, now
    if choice is None:
        review.state = "unmatched"
        audit.record(
            session, now, "payment.left_unmatched", actor=user, payload={"review": review_id}
        )
        return LEFT_UNMATCHED, PaymentOutcome(payment_id=payment.id)
    options = candidates_of(review)
    if not 0 <= choice < len(options):
        raise UserError(f"payment review {review_id} has no option {choice + 1}")
    match = options[choice]
    payment.customer_id = match.customer_id
    outcome = allocate(
        session,
        payment,
        [a.invoice_id for a in match.allocations],
        now,
        amounts=[a.amount for a in match.allocations],
        actor=user,
    )
    outcome.cancelled = cancel_for_invoices(session, outcome.closed + outcome.reduced, now)
    review.state = "applied"
    audit.record(
        session,
        now,
        "payment.review_applied",
        actor=user,
        customer_id=match.customer_id,
        payload={"review": review_id, "option": choice + 1, "allocated": str(outcome.allocated)},
    )
    if outcome.unapplied <= 0:
        return APPLIED, outcome
    told = _short_pick(session, payment, match, outcome)
    customer = session.get(Customer, match.customer_id)
    assert customer is not None
    service.open_or_add(
        session,
        customer.id,
        UNAPPLIED,
        now,
        detail=told,
        owner=service.owner_for(customer, dict(routes or {})),
        actor=user,
    )
    return f"{told} {customer.name}'s escalation has it.", outcome


def _short_pick(session: Session, payment: Payment, match: Match, outcome: PaymentOutcome) -> str:
    """What a pick that left some of the payment unapplied did, in a person's words."""
    currency = payment.currency
    said = f"Applied {format_money(outcome.allocated, currency)} of the bank payment of "
    said += f"{format_money(payment.amount, currency)} on {payment.received_on.isoformat()}"
    if outcome.allocated < match.total:
        paid = set(outcome.closed + outcome.reduced)
        missed = [a.invoice_id for a in match.allocations if a.invoice_id not in paid]
        numbers = session.scalars(
            select(Invoice.number)
            .where(Invoice.id.in_(missed or [a.invoice_id for a in match.allocations]))
            .order_by(Invoice.number)
        ).all()
        said += (
            f" instead of the {format_money(match.total, currency)} picked: "
            f"{', '.join(numbers)} had been paid or changed since this review was made"
        )
    return (
        f"{said}. {format_money(outcome.unapplied, currency)} is left unapplied: a refund may "
        "be owed."
    )
