"""The one source of time. Everything that needs "now" takes a Clock so tests can move it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put; `advance` moves it forward."""

    def __init__(self, instant: datetime) -> None:
        self._instant = as_utc(instant)

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        self._instant = as_utc(instant)

    def advance(self, delta: timedelta) -> None:
        self._instant += delta


def as_utc(instant: datetime) -> datetime:
    """Refuse naive datetimes (they hide bugs) and convert aware ones to UTC."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no timezone")
    return instant.astimezone(UTC)


# Names the system's zone files carry that are not places: `localtime` is whatever zone this
# server is set to, `Factory` a placeholder with no offset. Compared casefolded, as a
# case-insensitive file system would find them.
NOT_PLACES = frozenset({"localtime", "factory"})


def zone_named(name: str) -> ZoneInfo:
    """The IANA timezone of that name, refusing `localtime` and `Factory` as unknown
    (ZoneInfoNotFoundError, like any name with no zone file; ValueError for a malformed one)."""
    if name.casefold() in NOT_PLACES:
        raise ZoneInfoNotFoundError(f"No time zone found with key {name}")
    return ZoneInfo(name)


def local_date(clock: Clock, timezone: str) -> date:
    """Today's date in the given IANA timezone (the business decides what "today" is)."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()
