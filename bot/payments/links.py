"""The one-click payment link a reminder carries: the ledger's own pay URL when it has one, else a
processor link for exactly the invoices the message covers, created once and reused while they
are unpaid and unchanged. With neither, the message says how to pay without a link."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Invoice, PaymentLink
from bot.core.runtime import Runtime
from bot.payments.stripe_amounts import to_stripe_minor
from bot.payments.stripe_charges import INVOICE_IDS, MARK
from bot.planning.facts import CustomerFacts, InvoiceFacts
from integrations.base.payments import PaymentLinks

log = logging.getLogger(__name__)


def link_key(customer_id: int, invoices: list[InvoiceFacts]) -> str:
    """The same invoices at the same balances give the same key: the link is reused; a payment
    or a change of balance gives a new one."""
    parts = [f"c{customer_id}"] + [
        f"i{i.id}:{i.balance}:{i.currency}" for i in sorted(invoices, key=lambda i: i.id)
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


class LinkNotPrepared(Exception):
    """The plan needs a link that was not made before its write transaction (the ledger changed in
    between, or the processor refused it then): the reminder is held for a person, as when the
    processor is down."""


class PreparingLinks:
    """Stage one of a stored plan: links are made at the processor (idempotent by key, so a retry
    never makes a second) and remembered, before any write transaction is open."""

    def __init__(self, processor: PaymentLinks) -> None:
        self.processor = processor
        self.made: dict[str, tuple[str, str]] = {}
        self.refused: dict[str, Exception] = {}  # what the processor said, for stage two's hold

    def create(
        self, key: str, currency: str, amount_minor: int, description: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        try:
            made = self.processor.create(key, currency, amount_minor, description, metadata)
        except Exception as exc:
            self.refused[key] = exc
            raise
        self.made[key] = made
        return made

    def deactivate(self, provider_id: str) -> None:
        raise RuntimeError("planning never deactivates a payment link")


class PreparedLinks:
    """Stage two, inside the plan's write transaction: the links made in stage one, by key; no
    network call. A key the processor refused in stage one raises its error again, so the held
    reminder says what the processor said."""

    def __init__(
        self, made: dict[str, tuple[str, str]], refused: dict[str, Exception] | None = None
    ) -> None:
        self.made = made
        self.refused = refused or {}

    def create(
        self, key: str, currency: str, amount_minor: int, description: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        if key in self.made:
            return self.made[key]
        if key in self.refused:
            raise self.refused[key]
        raise LinkNotPrepared(f"no payment link was made for these invoices ({key})")

    def deactivate(self, provider_id: str) -> None:
        raise RuntimeError("planning never deactivates a payment link")


def payment_link(
    session: Session,
    links: PaymentLinks | None,
    customer: CustomerFacts,
    invoices: list[InvoiceFacts],
    now: datetime,
    *,
    store: bool = True,
) -> str | None:
    """The link for this message; a new processor link is stored unless `store` is False (stage
    one of a plan, which writes nothing)."""
    own = {i.payment_link for i in invoices}
    if len(invoices) == 1 and invoices[0].payment_link:
        return invoices[0].payment_link  # the ledger's own pay URL
    if links is None:
        return next(iter(own)) if len(own) == 1 and None not in own else None
    currencies = {i.currency for i in invoices}
    if len(currencies) != 1:
        return None  # one link cannot take two currencies: the message says how to pay
    currency = currencies.pop()
    base = link_key(customer.id, invoices)
    made = session.scalars(
        select(PaymentLink).where(
            (PaymentLink.key == base) | PaymentLink.key.startswith(f"{base}.", autoescape=True)
        )
    ).all()
    live = [link for link in made if link.retired_at is None]
    if live:
        return live[0].url
    # A retired link (paid, then refunded back to the same amounts) is never handed out again,
    # and a new key keeps Stripe's idempotency from returning it.
    key = base if not made else f"{base}.{len(made)}"
    amount = sum((i.balance for i in invoices), Decimal(0))
    numbers = ", ".join(i.number for i in invoices)
    url, provider_id = links.create(
        key=key,
        currency=currency,
        amount_minor=to_stripe_minor(amount, currency),  # refuses what Stripe cannot take
        description=f"{customer.name}: invoice{'s' if len(invoices) > 1 else ''} {numbers}",
        # The processor puts these on the payment too (a Stripe link on its PaymentIntent), so a
        # refund or dispute of it is known as arbot's by the mark (bot.payments.stripe_charges).
        metadata={
            MARK: key,
            "arbot_customer": customer.external_id,
            INVOICE_IDS: ",".join(str(i.id) for i in sorted(invoices, key=lambda i: i.id)),
            "arbot_invoice_numbers": numbers[:500],
        },
    )
    if not store:
        return url
    session.add(
        PaymentLink(
            key=key,
            customer_id=customer.id,
            url=url,
            provider_id=provider_id,
            currency=currency,
            amount=amount,
            invoice_ids=sorted(i.id for i in invoices),
            created_at=now,
        )
    )
    session.flush()
    return url


def link_in_message(session: Session, invoices: Sequence[Invoice]) -> str | None:
    """The link a planned message for these invoices carries, as `payment_link` chose it: the
    ledger's own pay URL of a single invoice, else a live processor link made for exactly these
    invoices, else the one pay URL they all share; None when there is none."""
    if len(invoices) == 1 and invoices[0].payment_link:
        return invoices[0].payment_link
    if not invoices:
        return None
    ids = sorted(i.id for i in invoices)
    made = session.scalars(
        select(PaymentLink)
        .where(PaymentLink.customer_id == invoices[0].customer_id, PaymentLink.retired_at.is_(None))
        .order_by(PaymentLink.id)
    ).all()
    for link in made:
        if sorted(link.invoice_ids) == ids:
            return link.url
    own = {i.payment_link for i in invoices}
    return next(iter(own)) if len(own) == 1 and None not in own else None


def retire(runtime: Runtime, links: PaymentLinks | None, invoice_ids: list[int]) -> list[str]:
    """Deactivate every live link covering one of these invoices (paid, or paid in part: a link
    for the old amount must not take a second payment), once the change is committed, with no
    transaction open while the processor is called. Returns the provider ids retired."""
    if links is None or not invoice_ids:
        return []
    with runtime.sessions() as session:
        live = [(link.id, link.provider_id) for link in _live_covering(session, invoice_ids)]
    return _switch_off(runtime, links, live)


def _switch_off(runtime: Runtime, links: PaymentLinks, live: list[tuple[int, str]]) -> list[str]:
    """Deactivate these links one by one, then mark those done retired in one short write."""
    done = {
        link_id: provider_id for link_id, provider_id in live if _deactivated(links, provider_id)
    }
    if done:
        with runtime.writing() as session:
            session.execute(
                update(PaymentLink)
                .where(PaymentLink.id.in_(done), PaymentLink.retired_at.is_(None))
                .values(retired_at=runtime.clock.now())
                .execution_options(synchronize_session=False)
            )
    return list(done.values())


def _live_covering(session: Session, invoice_ids: list[int]) -> list[PaymentLink]:
    """The links not yet retired that cover one of these invoices."""
    wanted = set(invoice_ids)
    customers = set(session.scalars(select(Invoice.customer_id).where(Invoice.id.in_(wanted))))
    live = session.scalars(
        select(PaymentLink).where(
            PaymentLink.customer_id.in_(customers), PaymentLink.retired_at.is_(None)
        )
    ).all()
    return [link for link in live if not wanted.isdisjoint(link.invoice_ids)]


def _deactivated(links: PaymentLinks, provider_id: str) -> bool:
    try:
        links.deactivate(provider_id)
    except Exception as exc:  # the processor is down: the next payment tries again
        log.warning("payment link %s not deactivated: %s", provider_id, exc)
        return False
    return True


def retire_stale(runtime: Runtime, links: PaymentLinks | None) -> list[str]:
    """Catch-up for a deactivation that failed: every live link whose invoices are no longer
    open at the amounts it was made for, retired with no transaction open while the processor
    is called."""
    if links is None:
        return []
    stale = []
    with runtime.sessions() as session:
        for link in session.scalars(select(PaymentLink).where(PaymentLink.retired_at.is_(None))):
            open_now = session.execute(
                select(Invoice.balance).where(
                    Invoice.id.in_(link.invoice_ids), Invoice.status == "open"
                )
            ).scalars()
            balances = list(open_now)
            if len(balances) != len(link.invoice_ids) or sum(balances, Decimal(0)) != link.amount:
                stale.append((link.id, link.provider_id))
    # Only the stale links themselves: a newer link for what is still open is the one sent.
    return _switch_off(runtime, links, stale) if stale else []
