"""Which days are business days: the weekdays of ARBOT_SEND_DAYS, minus the public holidays of
ARBOT_HOLIDAYS (a country code such as US or GB, or a region such as US-CA or DE-BY)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import holidays

from bot.core.errors import UserError
from bot.core.settings import Settings


@dataclass(frozen=True)
class BusinessDays:
    weekdays: frozenset[int]  # Monday is 0
    holidays: holidays.HolidayBase | None

    def why_not(self, day: date) -> str | None:
        """None on a business day; otherwise what the day is, e.g. "Saturday" or "Memorial Day"."""
        if day.weekday() not in self.weekdays:
            return day.strftime("%A")
        if self.holidays is not None and day in self.holidays:
            return str(self.holidays.get(day))
        return None


def business_days(settings: Settings) -> BusinessDays:
    country = settings.holidays_country
    return BusinessDays(
        weekdays=settings.weekday_numbers(),
        holidays=public_holidays(country) if country else None,
    )


def public_holidays(code: str) -> holidays.HolidayBase:
    """`US` → the US's federal holidays; `US-CA` → with California's own."""
    country, _, region = code.strip().upper().partition("-")
    try:
        return holidays.country_holidays(country, subdiv=region or None)
    except NotImplementedError:
        raise UserError(
            f"ARBOT_HOLIDAYS: {code!r} is not a country the holidays calendar knows; "
            "use a code such as US, GB or DE (or a region such as US-CA)"
        ) from None
