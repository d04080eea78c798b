"""What a verified Stripe event does to the ledger.

Each event id is stored in the same transaction as its effects: a retry of a handled event
changes nothing, and an event whose handling failed is handled again on Stripe's next try.
`checkout.session.completed` and `payment_intent.succeeded` for one payment both name the same
PaymentIntent, which is the payment's id here, so the second changes nothing either.

Events come in any order (RULES D4): a refund or card dispute of a payment not recorded yet raises
`PaymentNotRecordedYet`, which rolls the event id back with the rest, and the webhook answers 503
so that Stripe tries again once the payment may be here. Once the event is `TELL_AFTER` old, its
next try is kept and the finance channel told instead (status "unmatched"), so money is never
left in silence. One of a charge Stripe showed was made outside arbot's links
(bot.payments.stripe_charges) is kept and ignored at once instead: it is none of arbot's money.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import ArbotError
from bot.core.ids import parse_id
from bot.core.models import Customer, Invoice, Payment, PaymentLink, StripeEvent
from bot.escalations import service
from bot.ledger.accounts import cancel_waiting
from bot.payments.record import PaymentOutcome, record_payment, refund, unapplied_why
from bot.payments.stripe_amounts import from_stripe_minor
from integrations.base.payments import StripeEventIn

log = logging.getLogger(__name__)
SOURCE = "stripe"
EXTERNAL_ID_LENGTH = 128  # payments.external_id
REFUND_ID_LEAST = 16  # characters of a digest that still tell refunds apart
PAID_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
)
# A refund or dispute overtakes its payment by seconds, and Stripe's first retries come within
# minutes: an event this old whose payment is still unknown goes to a person on this try. Kept
# short, as the same 503 meets a refund of a charge made outside arbot's links when Stripe cannot
# be asked about it (Stripe warns about, and in time disables, an endpoint that keeps failing).
TELL_AFTER = timedelta(hours=1)
REFUNDED = "payment_refunded"  # why a person has the account: a refund reopened invoices
DISPUTED = "disputed"  # why its waiting reminders are cancelled, as a dispute reply's are


class PaymentNotRecordedYet(ArbotError):
    """A refund or card dispute of a payment arbot has not recorded yet: the write rolls back
    (the event id with it) and Stripe is asked to try again."""


@dataclass
class StripeResult:
    # "applied" | "duplicate" | "ignored" | "unmatched" (the finance channel hears) | "retry"
    status: str
    detail: str = ""
    outcome: PaymentOutcome = field(default_factory=PaymentOutcome)
    escalation_id: int | None = None


def amount_of(minor: object, currency: str) -> Decimal:
    """Stripe's integer minor units back into a Decimal in the currency's own units (as Stripe
    counts them: 1000000 ISK is 10000 ISK, not the 1000000 Babel's ISO digits would read)."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise ValueError(f"amount {minor!r} is not an integer count of minor units")
    return from_stripe_minor(minor, currency)


def invoice_ids(metadata: object) -> list[int]:
    """The invoice ids bot.payments.links put in a payment link's metadata (`arbot_invoice_ids`)."""
    if not isinstance(metadata, dict):
        return []
    raw = str(metadata.get("arbot_invoice_ids") or "")
    ids = [parse_id(part.strip()) for part in raw.split(",")]
    return [invoice_id for invoice_id in ids if invoice_id is not None]


def apply_event(
    session: Session,
    event: StripeEventIn,
    now: datetime,
    routes: dict[str, str],
    *,
    outside_arbot: bool = False,
    payment_intent: str | None = None,
    timezone: str = "UTC",
) -> StripeResult:
    """`outside_arbot`: Stripe showed a refund's or dispute's charge was not made through arbot's
    links (bot.payments.stripe_charges), so an unrecorded payment is not waited for.
    `payment_intent`: the PaymentIntent Stripe named behind a refund's or dispute's charge, asked
    before the write, for an event that names only the charge (as disputes in Stripe's older
    format do); the event's own is used when it has one. `timezone`:
    the business's (ARBOT_TIMEZONE), whose day a payment or refund is received on, as a ledger's
    or a bank file's is."""
    if session.get(StripeEvent, event.id) is not None:
        return StripeResult("duplicate", f"event {event.id} was handled before")
    # A replica handling the same event at the same moment fails here on the primary key, and
    # its whole transaction with it (the handler answers that as a duplicate).
    session.add(StripeEvent(id=event.id, type=event.type[:64], received_at=now))
    session.flush()
    zone = ZoneInfo(timezone)
    if event.type in PAID_TYPES:
        return _paid(session, event, now, routes, zone)
    if event.type == "charge.refunded":
        return _refunded(session, event, now, routes, outside_arbot, payment_intent, zone)
    if event.type == "charge.dispute.created":
        return _disputed(session, event, now, routes, outside_arbot, payment_intent)
    log.info("Stripe event %s (%s) acknowledged; arbot does not act on it", event.id, event.type)
    return StripeResult("ignored", f"arbot does not act on {event.type}")


def _paid(
    session: Session, event: StripeEventIn, now: datetime, routes: dict[str, str], zone: ZoneInfo
) -> StripeResult:
    obj = event.object
    if event.type.startswith("checkout.session"):
        if obj.get("payment_status") != "paid":
            return StripeResult("ignored", "checkout completed, payment still pending")
        minor, payment_id = obj.get("amount_total"), obj.get("payment_intent") or obj.get("id")
    else:
        minor, payment_id = obj.get("amount_received"), obj.get("id")
    currency = str(obj.get("currency") or "").upper()
    ids = invoice_ids(obj.get("metadata"))
    if not ids and obj.get("payment_link"):
        link = session.scalars(
            select(PaymentLink).where(PaymentLink.provider_id == str(obj["payment_link"]))
        ).first()
        ids = list(link.invoice_ids) if link else []
    if not ids:
        return StripeResult("ignored", "not a payment for arbot's invoices (no invoice ids)")
    try:
        amount = amount_of(minor, currency)
    except (ValueError, KeyError) as exc:
        return StripeResult("ignored", f"unreadable amount: {exc}")
    customers = set(session.scalars(select(Invoice.customer_id).where(Invoice.id.in_(ids))).all())
    if len(customers) != 1:
        return StripeResult("ignored", "its invoices are unknown or belong to several customers")
    customer_id = customers.pop()
    outcome = record_payment(
        session,
        source=SOURCE,
        external_id=str(payment_id),
        customer_id=customer_id,
        received_on=datetime.fromtimestamp(int(obj.get("created") or now.timestamp()), zone).date(),
        amount=amount,
        currency=currency,
        invoice_ids=ids,
        now=now,
        reference=str(obj.get("id")),
    )
    if outcome.duplicate:
        return StripeResult("duplicate", f"payment {payment_id} was recorded before", outcome)
    result = StripeResult("applied", f"payment {payment_id}", outcome)
    if outcome.unapplied > 0:
        # Paid twice, paid after the invoice closed another way, or paid in another currency:
        # a person decides about a refund; the money is never left in silence.
        customer = session.get(Customer, customer_id)
        assert customer is not None
        result.detail = (
            f"{outcome.unapplied} {currency} of Stripe payment {payment_id} could not be applied: "
            + unapplied_why(outcome, currency)
        )
        escalation, _ = service.open_or_add(
            session,
            customer_id,
            "payment_unapplied",
            now,
            detail=result.detail,
            owner=service.owner_for(customer, routes),
        )
        result.escalation_id = escalation.id
    return result


def _refunded(
    session: Session,
    event: StripeEventIn,
    now: datetime,
    routes: dict[str, str],
    outside: bool,
    charge_intent: str | None,
    zone: ZoneInfo,
) -> StripeResult:
    obj = event.object
    payment_id = obj.get("payment_intent") or charge_intent
    if not payment_id:
        return StripeResult("ignored", "refund of a charge without a PaymentIntent")
    payment = session.scalars(
        select(Payment).where(Payment.source == SOURCE, Payment.external_id == str(payment_id))
    ).first()
    if payment is None:
        return _not_recorded(
            session, event, now, f"a refund of Stripe payment {payment_id}", outside
        )
    if EXTERNAL_ID_LENGTH - len(f"{payment_id}:refund:") < REFUND_ID_LEAST:
        return StripeResult("ignored", f"refund of {payment_id}: its id is too long to record")
    try:
        total = amount_of(obj.get("amount_refunded"), payment.currency)
    except ValueError as exc:
        return StripeResult("ignored", f"unreadable refund: {exc}")
    outcome = refund(
        session,
        source=SOURCE,
        payment_external_id=str(payment_id),
        refunded_total=total,
        now=now,
        received_on=now.astimezone(zone).date(),
        refund_id=_refund_id(str(payment_id), f"{obj.get('id')}:{obj.get('amount_refunded')}"),
    )
    status = "duplicate" if outcome.duplicate else "applied"
    if outcome.reopened and payment.customer_id is not None:
        # A person hears of it even when no escalation thread was open to carry the note.
        customer = session.get(Customer, payment.customer_id)
        assert customer is not None
        numbers = session.scalars(
            select(Invoice.number).where(Invoice.id.in_(outcome.reopened)).order_by(Invoice.number)
        ).all()
        service.open_or_add(
            session,
            customer.id,
            REFUNDED,
            now,
            detail=(
                f"Stripe payment {payment_id} was refunded ({total} {payment.currency} in all): "
                f"{', '.join(numbers)} open again"
            ),
            owner=service.owner_for(customer, routes),
        )
    return StripeResult(status, f"refund of {payment_id}", outcome)


def _not_recorded(
    session: Session, event: StripeEventIn, now: datetime, what: str, outside: bool
) -> StripeResult:
    """A refund or dispute whose payment is not here yet: retried while Stripe still retries,
    then kept and handed to the finance channel (no customer is known to escalate). One of a
    charge made outside arbot's links is kept and ignored at once."""
    if outside:
        return StripeResult("ignored", f"{what}, a charge made outside arbot's payment links")
    if event.created is not None and now - event.created < TELL_AFTER:
        raise PaymentNotRecordedYet(f"{what}, which arbot has not recorded yet: try again later")
    detail = (
        f"{what} ({event.type}, event {event.id}) names a payment arbot never recorded. "
        "If it paid arbot's invoices, check them in the ledger and the Stripe dashboard."
    )
    audit.record(session, now, "stripe.unmatched", payload={"event": event.id, "type": event.type})
    log.warning(
        "Stripe event %s (%s): its payment is unknown; the finance channel is told",
        event.id,
        event.type,
    )
    return StripeResult("unmatched", detail)


def _refund_id(payment_id: str, wanted: str) -> str:
    """The refund's part of its payment row's id (`<payment>:refund:<refund>`, a 128-character
    column): as Stripe names it when it fits, else a digest of that name, the same each time so a
    repeated event is still known."""
    room = EXTERNAL_ID_LENGTH - len(f"{payment_id}:refund:")
    if len(wanted) <= room:
        return wanted
    return hashlib.sha256(wanted.encode()).hexdigest()[:room]


def _disputed(
    session: Session,
    event: StripeEventIn,
    now: datetime,
    routes: dict[str, str],
    outside: bool,
    charge_intent: str | None,
) -> StripeResult:
    obj = event.object
    payment_id = obj.get("payment_intent") or charge_intent
    payment = session.scalars(
        select(Payment).where(
            Payment.source == SOURCE, Payment.external_id == str(payment_id or "")
        )
    ).first()
    if payment is None:
        where = payment_id or obj.get("charge") or "?"
        return _not_recorded(
            session, event, now, f"a card dispute of Stripe payment {where}", outside
        )
    if payment.customer_id is None:
        return StripeResult("ignored", "a card dispute on a payment placed on no customer")
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    currency = str(obj.get("currency") or payment.currency).upper()
    try:
        amount = amount_of(obj.get("amount"), currency)
    except ValueError as exc:
        return StripeResult("ignored", f"unreadable card dispute: {exc}")
    detail = (
        f"the card payment {payment.external_id} is disputed at the bank "
        f"({obj.get('reason') or 'no reason given'}, {amount} {currency}): answer it in the "
        "Stripe dashboard"
    )
    audit.record(
        session,
        now,
        "card.disputed",
        customer_id=customer.id,
        payload={
            "payment": payment.external_id,
            "dispute": obj.get("id"),
            "reason": obj.get("reason"),
        },
    )
    escalation, _ = service.open_or_add(
        session,
        customer.id,
        "card_dispute",
        now,
        detail=detail,
        owner=service.owner_for(customer, routes),
    )
    # No reminder goes out while the bank decides, as after a reply that disputes (RULES A9).
    cancelled = cancel_waiting(session, customer.id, DISPUTED, now)
    return StripeResult(
        "applied", detail, PaymentOutcome(cancelled=cancelled), escalation_id=escalation.id
    )
