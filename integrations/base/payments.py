"""Money in: the processor's payment links, what Stripe says of a payment, a verified Stripe event,
and a bank feed's payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

# Metadata key of the workspace whose books a payment link was made for (its team id, or MAIN_BOOKS
# for the main workspace): businesses that share one Stripe account get each other's events.
WORKSPACE_KEY = "arbot_workspace"
MAIN_BOOKS = "main"


def books_of(workspace: str | None) -> str:
    """The value of WORKSPACE_KEY for a workspace's links (ARBOT_WORKSPACE; None: the main one)."""
    return workspace or MAIN_BOOKS


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


class StripePayments(Protocol):
    """Reads what Stripe holds on a payment, for a refund or card dispute whose payment arbot has
    not recorded: is it one made through arbot's links? Each call may raise (Stripe unreachable,
    refused, or the object unknown): the caller then cannot tell, and says so."""

    def payment_intent_of_charge(self, charge_id: str) -> str | None:
        """The PaymentIntent the charge belongs to; None when it has none (a bare charge)."""
        ...

    def payment_intent_metadata(self, payment_intent_id: str) -> dict[str, str]:
        """The PaymentIntent's metadata (where arbot's links put their marker)."""
        ...

    def payment_links_of(self, payment_intent_id: str) -> list[str]:
        """The Payment Links whose Checkout Sessions made this PaymentIntent (none for a payment
        made another way)."""
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
