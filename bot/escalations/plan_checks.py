"""A payment plan's form, checked: each instalment's date after today and after the one above,
each amount above zero in the currency's minor units, and together the balance. Problems are
named by row and field, so the form shows each under its own input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bot.core.money import format_money, minor_units, parse_amount


@dataclass(frozen=True)
class Entry:
    """One row of the form as typed: a date picked, an amount written (None: left empty)."""

    due_on: date | None
    amount: str | None


@dataclass(frozen=True)
class Checked:
    """The instalments, once valid; else `errors`: (row from 0, "date" | "amount") -> message."""

    instalments: list[tuple[date, Decimal]]
    errors: dict[tuple[int, str], str]


def check_entries(
    entries: Sequence[Entry], balance: Decimal, currency: str, today: date
) -> Checked:
    """Each filled row must have a date after today, later than the row before, and an amount
    above zero in the currency's minor units; together the amounts must make the balance."""
    errors: dict[tuple[int, str], str] = {}
    instalments: list[tuple[date, Decimal]] = []
    places = minor_units(currency)
    previous: date | None = None
    last_row = 0
    for row, entry in enumerate(entries):
        if entry.due_on is None and not entry.amount:
            continue
        last_row = row
        if entry.due_on is None:
            errors[(row, "date")] = "Pick the date of this instalment."
        elif entry.due_on <= today:
            errors[(row, "date")] = "Pick a date after today."
        elif previous is not None and entry.due_on <= previous:
            errors[(row, "date")] = "Pick a date after the instalment above."
        amount = _amount(entry.amount, places, currency, errors, row)
        if entry.due_on is not None:
            previous = entry.due_on
        if amount is not None and entry.due_on is not None:
            instalments.append((entry.due_on, amount))
    if not errors:
        if not instalments:
            errors[(0, "date")] = "Enter at least one instalment: a date and an amount."
        elif (total := sum((a for _, a in instalments), Decimal(0))) != balance:
            errors[(last_row, "amount")] = (
                f"The instalments add up to {format_money(total, currency)}; they must make "
                f"the balance, {format_money(balance, currency)}."
            )
    return Checked(instalments if not errors else [], errors)


def _amount(
    text: str | None, places: int, currency: str, errors: dict[tuple[int, str], str], row: int
) -> Decimal | None:
    if not text:
        errors[(row, "amount")] = f"Write the amount in {currency}, e.g. 250.00."
        return None
    try:
        amount = parse_amount(text.replace(",", ""))
    except ValueError as exc:
        errors[(row, "amount")] = f"The amount {exc}."
        return None
    if amount <= 0:
        errors[(row, "amount")] = "Write an amount above zero."
        return None
    if -amount.as_tuple().exponent > places:  # type: ignore[operator]
        errors[(row, "amount")] = f"{currency} has {places} decimal places at most."
        return None
    return amount
