"""Money is a Decimal with its ISO 4217 currency: never a float, never mixed across currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.money import Money, parse_amount


def test_money_refuses_a_float() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        Money(0.1, "USD")  # type: ignore[arg-type]


def test_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(Decimal(1), "XXY")


def test_money_cannot_be_added_across_currencies() -> None:
    with pytest.raises(ValueError, match="cannot combine USD with EUR"):
        _ = Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "shown", "plain"),
    [
        ("1234.5", "USD", "$1,234.50", "1234.50"),
        ("1234.5", "EUR", "€1,234.50", "1234.50"),
        ("1234.5", "JPY", "¥1,234", "1234"),  # rounds half to even at 0 places
        ("1.2345", "KWD", "KWD1.234", "1.234"),
    ],
)
def test_money_is_shown_at_its_currencys_precision(
    amount: str, currency: str, shown: str, plain: str
) -> None:
    money = Money(Decimal(amount), currency)
    assert money.format().replace("\xa0", "") == shown
    assert money.as_str() == plain


@pytest.mark.parametrize("text", ["", "1,000", "1e3", "nan", "Infinity", "$5", "0.00001"])
def test_parse_amount_refuses_what_is_not_a_plain_decimal(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


@given(
    st.decimals(
        min_value=-(10**12), max_value=10**12, places=4, allow_nan=False, allow_infinity=False
    )
)
def test_parse_amount_round_trips_every_four_place_decimal(value: Decimal) -> None:
    assert parse_amount(str(value)) == value
