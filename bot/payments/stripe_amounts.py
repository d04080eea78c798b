"""Amounts as Stripe's API counts them, which is not always the currency's ISO minor unit.

Stripe's "Supported currencies" page (docs.stripe.com/currencies) says an API amount is an
integer count of the currency's minor unit, two decimals unless the currency is listed as
zero-decimal or three-decimal, with these special cases for charges:

- ISK and UGX became zero-decimal, but Stripe still counts them in hundredths for backward
  compatibility: 5 ISK is `500`, and only whole units can be charged (a multiple of 100).
- HUF and TWD are two-decimal for charges (zero-decimal only for payouts, which arbot never
  makes): 10.45 HUF is `1045`.
- The three-decimal currencies need their last digit 0: 5.120 KWD is `5120`; 5.124 KWD cannot
  be charged.

Babel's digits (`bot.core.money.minor_units`) are CLDR's: 0 for ISK, HUF and UGX, and for IDR,
COP and others Stripe counts in hundredths, so they are never used for a Stripe amount. An amount
Stripe cannot charge exactly is refused, never rounded: a person decides what to ask for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.core.errors import ArbotError

# Stripe's lists, as its page gives them (UGX, also listed as zero-decimal there, is a special
# case counted in hundredths: WHOLE_UNITS_ONLY).
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
WHOLE_UNITS_ONLY = frozenset({"ISK", "UGX"})


class UnchargeableAmount(ArbotError):
    """An amount Stripe cannot charge exactly in its currency; arbot never rounds money owed."""


@dataclass(frozen=True, slots=True)
class StripeUnit:
    exponent: int  # Stripe's minor units in one unit of the currency: 10 ** exponent
    step: int  # a charge's minor units are a multiple of this


def stripe_unit(currency: str) -> StripeUnit:
    """How Stripe counts this currency (ISO 4217 code, either case)."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return StripeUnit(exponent=0, step=1)
    if code in THREE_DECIMAL:
        return StripeUnit(exponent=3, step=10)
    if code in WHOLE_UNITS_ONLY:
        return StripeUnit(exponent=2, step=100)
    return StripeUnit(exponent=2, step=1)


def to_stripe_minor(amount: Decimal, currency: str) -> int:
    """The integer Stripe reads as exactly `amount` in `currency`: 10000 ISK is 1000000, 5.12 KWD
    is 5120, 500 JPY is 500. Raises UnchargeableAmount for an amount Stripe cannot take exactly
    (5.124 KWD, 10000.50 ISK, 0.001 USD)."""
    code = currency.upper()
    unit = stripe_unit(code)
    minor = amount.scaleb(unit.exponent)
    if minor != minor.to_integral_value() or minor % unit.step != 0:
        smallest = Decimal(unit.step).scaleb(-unit.exponent).normalize()
        raise UnchargeableAmount(
            f"Stripe charges {code} only in steps of {smallest} {code}, so {amount} {code} "
            "cannot be charged exactly; arbot does not round an amount owed (correct the "
            "balance in the ledger, or send the customer another way to pay)"
        )
    return int(minor)


def from_stripe_minor(minor: int, currency: str) -> Decimal:
    """Stripe's integer amount back into a Decimal in the currency's own units: 1000000 ISK is
    10000 ISK, 5120 KWD is 5.12 KWD, 500 JPY is 500 JPY."""
    return Decimal(minor).scaleb(-stripe_unit(currency).exponent)
