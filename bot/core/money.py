"""Money: a Decimal amount with its ISO 4217 currency. Never a float, never summed across currencies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache, lru_cache

from babel.core import Locale, get_global
from babel.numbers import format_currency, get_currency_precision, list_currencies

# Storage keeps four decimal places: enough for every ISO 4217 minor unit (at most 3).
STORAGE_PLACES = 4


_AMOUNT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# The largest amount stored: NUMERIC(18, 4) on PostgreSQL.
MAX_AMOUNT = Decimal("99999999999999.9999")


@cache
def known_currencies() -> frozenset[str]:
    """ISO 4217 codes legal tender somewhere today (not DEM or FRF, not XXX or XTS)."""
    current = {
        code
        for entries in get_global("territory_currencies").values()
        for code, _start, end, tender in entries
        if end is None and tender
    }
    return frozenset(current & set(list_currencies()))


@cache
def babel_locale(name: str) -> Locale:
    """Parsed once: Babel parses a locale name on every call otherwise, which dominates formatting."""
    return Locale.parse(name)


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD."""
    return int(get_currency_precision(currency))


def is_currency(code: str) -> bool:
    return code in known_currencies()


def parse_amount(text: str) -> Decimal:
    """Parse a decimal string such as "1234.50" or "-3"; reject floats' friends (nan, inf, 1e5)."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("is empty")
    if not _AMOUNT.fullmatch(cleaned):
        raise ValueError(
            f"{cleaned!r} is not a decimal amount (use digits and a dot, e.g. 1250.00)"
        )
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise ValueError(f"{cleaned!r} is not a decimal amount") from None
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"{cleaned} is larger than the largest amount arbot stores ({MAX_AMOUNT})")
    if -value.as_tuple().exponent > STORAGE_PLACES:  # type: ignore[operator]
        raise ValueError(f"{cleaned!r} has more than {STORAGE_PLACES} decimal places")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money needs a Decimal amount, got {type(self.amount).__name__}")
        if not is_currency(self.currency):
            raise ValueError(f"{self.currency!r} is not an ISO 4217 currency code")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def rounded(self) -> Money:
        """Rounded to the currency's minor unit (2 for USD, 0 for JPY, 3 for KWD)."""
        places = minor_units(self.currency)
        quantum = Decimal(1).scaleb(-places)
        return Money(self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def format(self, locale: str = "en_US") -> str:
        return format_currency(self.amount, self.currency, locale=babel_locale(locale))

    def as_str(self) -> str:
        """The amount as a plain decimal string at the currency's precision, for JSON and CSV."""
        return str(self.rounded().amount)


@lru_cache(maxsize=65536)
def format_money(amount: Decimal, currency: str, locale: str = "en_US") -> str:
    return Money(amount, currency).format(locale)


def decimal_str(amount: Decimal, currency: str) -> str:
    return Money(amount, currency).as_str()
