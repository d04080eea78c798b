"""Money in: the processor's payment links, a verified Stripe event, and a bank feed's payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


class PaymentLinks(Protocol):
    """Creates a hosted payment link (the processor's; arbot never sees card data)."""

    def create(
        self, key: str, currency: str, amount_minor: int, description: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        """Returns (url, provider id). `key` makes a retry return the same link, never a second."""
        ...

    def deactivate(self, provider_id: str) -> None:
        """Nobody can pay through this link any more (its invoices were paid or changed)."""
        ...


@dataclass(frozen=True, slots=True)
class StripeEventIn:
    """A Stripe webhook event whose signature the adapter verified: the event's own fields and
    its `data.object` as Stripe sent it."""

    id: str
    type: str
    object: dict[str, Any]
    livemode: bool
    created: datetime | None = None  # when Stripe made the event, UTC; its retries keep it


@dataclass(frozen=True, slots=True)
class BankPayment:
    """One incoming payment as the bank reported it."""

    row: int  # where it is in the file, as a spreadsheet numbers it
    received_on: date
    amount: Decimal  # more than zero, in `currency`
    currency: str  # ISO 4217, upper case
    reference: str  # may be empty
    payer: str  # may be empty
    external_id: str  # stable fingerprint, see integrations.csv_payments
