"""The dates a ledger may hold. A date far outside these years is a typo (9999-12-31) that would
break the reports' date arithmetic.

Kept apart from `integrations.base.ledger`, which gives these to every source: a command's
`--as-of` is held to the same dates, and `arbot aging` need not load the sources' records and
protocols to check it."""

from __future__ import annotations

from datetime import date

EARLIEST_DATE = date(1990, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def date_problem(day: date) -> str | None:
    """What is wrong with `day` as a ledger date, or None."""
    if EARLIEST_DATE <= day <= LATEST_DATE:
        return None
    return (
        f"{day.isoformat()} is outside the dates arbot accepts ({EARLIEST_DATE.isoformat()} "
        f"to {LATEST_DATE.isoformat()}); check it for a typo"
    )
