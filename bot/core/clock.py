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
# server is set to, `Factory` a placeholder with no offset, `posixrules` the rules a POSIX TZ
# string borrows. The `posix/` tree holds a copy of every zone (these among them); the `right/`
# tree holds leap-second variants, whose clocks run 27 seconds off civil time. Compared
# casefolded, as a case-insensitive file system would find them.
NOT_PLACES = frozenset({"localtime", "factory", "posixrules"})
POSIX_TREE = "posix/"
LEAP_SECOND_TREE = "right/"


def zone_named(name: str) -> ZoneInfo:
    """The IANA timezone of that name, refusing `localtime`, `Factory`, `posixrules` (also under
    `posix/`) and every `right/` zone as unknown (ZoneInfoNotFoundError, like any name with no
    zone file; ValueError for a malformed one)."""
    if not _is_place(name):
        raise ZoneInfoNotFoundError(f"No time zone found with key {name}")
    return ZoneInfo(name)


def _is_place(name: str) -> bool:
    """False for the zone file names zone_named refuses, whether a zone file has them or not."""
    key = name.casefold()
    if key.startswith(LEAP_SECOND_TREE):
        return False
    return key.removeprefix(POSIX_TREE) not in NOT_PLACES


def local_date(clock: Clock, timezone: str) -> date:
    """Today's date in the given IANA timezone (the business decides what "today" is)."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()
