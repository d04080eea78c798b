"""The one-click payment link a reminder carries: the ledger's own pay URL when it has one, else a
processor link for exactly the invoices the message covers, created once and reused while they
are unpaid and unchanged. With neither, the message says how to pay without a link."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Invoice, PaymentLink
from bot.core.money import minor_units
from bot.planning.facts import CustomerFacts, InvoiceFacts
from integrations.base import PaymentLinks

log = logging.getLogger(__name__)


def link_key(customer_id: int, invoices: list[InvoiceFacts]) -> str:
    """The same invoices at the same balances give the same key: the link is reused; a payment
    or a change of balance gives a new one."""
    parts = [f"c{customer_id}"] + [
        f"i{i.id}:{i.balance}:{i.currency}" for i in sorted(invoices, key=lambda i: i.id)
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def payment_link(
    session: Session,
    links: PaymentLinks | None,
    customer: CustomerFacts,
    invoices: list[InvoiceFacts],
    now: datetime,
) -> str | None:
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
        amount_minor=int(amount.scaleb(minor_units(currency))),
        description=f"{customer.name}: invoice{'s' if len(invoices) > 1 else ''} {numbers}",
        metadata={
            "arbot_customer": customer.external_id,
            "arbot_invoice_ids": ",".join(str(i.id) for i in sorted(invoices, key=lambda i: i.id)),
            "arbot_invoice_numbers": numbers[:500],
        },
    )
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


def retire(
    session: Session, links: PaymentLinks | None, invoice_ids: list[int], now: datetime
) -> list[str]:
    """Deactivate every live link covering one of these invoices (paid, or paid in part: a link
    for the old amount must not take a second payment). Returns the provider ids retired."""
    if links is None or not invoice_ids:
        return []
    wanted = set(invoice_ids)
    customers = set(session.scalars(select(Invoice.customer_id).where(Invoice.id.in_(wanted))))
    live = session.scalars(
        select(PaymentLink).where(
            PaymentLink.customer_id.in_(customers), PaymentLink.retired_at.is_(None)
        )
    ).all()
    retired = []
    for link in live:
        if wanted.isdisjoint(link.invoice_ids):
            continue
        try:
            links.deactivate(link.provider_id)
        except Exception as exc:  # the processor is down: the next payment tries again
            log.warning("payment link %s not deactivated: %s", link.provider_id, exc)
            continue
        link.retired_at = now
        retired.append(link.provider_id)
    return retired


def retire_stale(session: Session, links: PaymentLinks | None, now: datetime) -> list[str]:
    """Catch-up for a deactivation that failed: every live link whose invoices are no longer
    open at the amounts it was made for."""
    if links is None:
        return []
    stale = []
    for link in session.scalars(select(PaymentLink).where(PaymentLink.retired_at.is_(None))):
        open_now = session.execute(
            select(Invoice.balance).where(
                Invoice.id.in_(link.invoice_ids), Invoice.status == "open"
            )
        ).scalars()
        balances = list(open_now)
        if len(balances) != len(link.invoice_ids) or sum(balances, Decimal(0)) != link.amount:
            stale.extend(link.invoice_ids)
    return retire(session, links, stale, now) if stale else []
