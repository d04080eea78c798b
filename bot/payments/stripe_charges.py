"""Whose charge a Stripe refund or card dispute is about, when arbot has not recorded its payment.

arbot's payment links mark the PaymentIntents they make (`MARK` in its metadata, beside the
invoice ids), so such an event is one of two things: a refund or dispute of arbot's own payment
that came before the payment did (Stripe keeps no order: it is retried, then the finance channel
hears), or one of a charge the business made outside arbot, on its own Stripe (nothing for arbot
to do: it is acknowledged as ignored at once).

A charge is outside arbot only when Stripe says so plainly: its PaymentIntent carries neither the
mark nor invoice ids (links made before the mark carry those), and none of the Payment Links whose
Checkout Sessions made it is one of arbot's. A charge with no PaymentIntent at all is outside too:
a Payment Link always makes one. Whatever Stripe cannot answer leaves the event on the path it
always took. Stripe is asked with no transaction open, and only about an event not handled before
whose payment is not recorded.

Businesses that share one Stripe account each get every event of it. A refund's charge or a dispute
need not carry the link's metadata; the PaymentIntent does, naming the workspace whose link made it
(WORKSPACE_KEY): one naming another workspace is that workspace's payment, never one this one waits
for, and is ignored at once as the payment itself is (bot.payments.flows)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from bot.core.models import Payment, PaymentLink, StripeEvent
from bot.core.runtime import Runtime
from bot.payments.stripe_events import SOURCE
from integrations.base.payments import WORKSPACE_KEY, StripeEventIn, StripePayments, books_of

log = logging.getLogger(__name__)
MARK = "arbot_link"  # metadata key arbot's links set, its value the link's key
INVOICE_IDS = "arbot_invoice_ids"
REFUND = "charge.refunded"
DISPUTE = "charge.dispute.created"


def marked(metadata: object) -> bool:
    """Metadata arbot's links set: the mark, or (links made before it) the invoice ids."""
    if not isinstance(metadata, dict):
        return False
    return any(
        isinstance(metadata.get(key), str) and metadata[key].strip() for key in (MARK, INVOICE_IDS)
    )


@dataclass(frozen=True, slots=True)
class WhoseCharge:
    """What Stripe said, before the write, of a refund's or dispute's charge."""

    outside_arbot: bool = False  # Stripe shows the charge was not made through arbot's links
    # The event's own PaymentIntent, or the one Stripe names behind its charge when the event
    # names only the charge (a dispute in Stripe's older format): the payment to match it to.
    payment_intent: str | None = None
    # Another workspace whose link made the PaymentIntent (its metadata names it), on a Stripe
    # account two workspaces share: the event is that workspace's, nothing of this one's.
    elsewhere: str | None = None


def named_elsewhere(runtime: Runtime, metadata: object) -> str | None:
    """The workspace `metadata` names (WORKSPACE_KEY) when it is another one; None when it names
    this one, or nothing (a link made before links named their workspace)."""
    books = metadata.get(WORKSPACE_KEY) if isinstance(metadata, dict) else None
    if not isinstance(books, str) or not books or books == books_of(runtime.settings.workspace):
        return None
    return books


def whose_charge(
    runtime: Runtime, event: StripeEventIn, stripe: StripePayments | None
) -> WhoseCharge:
    """Whether this refund or dispute is of a charge Stripe shows was not made through arbot's
    links (not when it may be arbot's, or Stripe cannot be asked) or through another workspace's,
    and the PaymentIntent it is about, as far as the event and Stripe tell."""
    if event.type not in (REFUND, DISPUTE):
        return WhoseCharge()
    obj = event.object
    intent = _id(obj.get("payment_intent"))
    if stripe is None or marked(obj.get("metadata")):  # a charge carries its intent's metadata
        return WhoseCharge(payment_intent=intent)
    charge = _id(obj.get("id") if event.type == REFUND else obj.get("charge"))
    if intent is None and charge is None:
        return WhoseCharge()
    if _known(runtime, event.id, intent):
        return WhoseCharge(payment_intent=intent)
    try:
        if intent is None:
            assert charge is not None
            intent = stripe.payment_intent_of_charge(charge)
            if intent is None:
                return _outside(event, f"charge {charge} has no PaymentIntent")
            if _known(runtime, event.id, intent):
                return WhoseCharge(payment_intent=intent)
        metadata = stripe.payment_intent_metadata(intent)
        elsewhere = named_elsewhere(runtime, metadata)
        if elsewhere is not None:
            return WhoseCharge(payment_intent=intent, elsewhere=elsewhere)
        if marked(metadata):
            return WhoseCharge(payment_intent=intent)
        links = stripe.payment_links_of(intent)
    except Exception as exc:  # unknown to Stripe, refused, or unreachable: it may be arbot's
        log.warning(
            "Stripe event %s (%s): could not ask Stripe whose payment it is: %s",
            event.id,
            event.type,
            type(exc).__name__,
        )
        return WhoseCharge(payment_intent=intent)
    if links and _arbots_link(runtime, links):  # made through a link from before the mark
        return WhoseCharge(payment_intent=intent)
    return _outside(event, f"PaymentIntent {intent} carries no mark of arbot's links", intent)


def _id(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _known(runtime: Runtime, event_id: str, intent: str | None) -> bool:
    """The event was handled before, or its payment is recorded: the ledger answers it."""
    with runtime.sessions() as session:
        if session.get(StripeEvent, event_id) is not None:
            return True
        if intent is None:
            return False
        recorded = session.scalars(
            select(Payment.id).where(Payment.source == SOURCE, Payment.external_id == intent)
        ).first()
    return recorded is not None


def _arbots_link(runtime: Runtime, provider_ids: list[str]) -> bool:
    with runtime.sessions() as session:
        found = session.scalars(
            select(PaymentLink.id).where(PaymentLink.provider_id.in_(provider_ids))
        ).first()
    return found is not None


def _outside(event: StripeEventIn, why: str, intent: str | None = None) -> WhoseCharge:
    log.info(
        "Stripe event %s (%s) is of a charge made outside arbot: %s", event.id, event.type, why
    )
    return WhoseCharge(outside_arbot=True, payment_intent=intent)
