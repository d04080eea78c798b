"""When a message may go out: inside the business's send window, in the contact's own timezone,
never before 08:00 or from 21:00 local (Reg F 1006.6(b)(1)(i)), and, when the timezone signals
disagree (the phone's area code says one zone, the address another), only when every one of them
is inside its window (Reg F commentary; RULES A2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from bot.core.clock import zone_named

QUIET_UNTIL = time(8)  # nothing goes out before this, local time
QUIET_FROM = time(21)  # nor from this time on
LOOK_AHEAD_DAYS = 15


@dataclass(frozen=True)
class Window:
    start: time = time(9)
    end: time = time(17)
    weekdays: frozenset[int] = frozenset(range(5))  # Monday = 0

    def clipped(self) -> Window:
        """Never wider than the quiet-hours limits, whatever the settings say."""
        return Window(max(self.start, QUIET_UNTIL), min(self.end, QUIET_FROM), self.weekdays)


@lru_cache(maxsize=4096)
def zones_for_phone(e164: str) -> tuple[str, ...]:
    """The zones a phone number may be in (by country and area code); empty when unknown."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    zones = phone_timezones.time_zones_for_number(number)
    return tuple(z for z in zones if z != "Etc/Unknown")


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    """The zone of that name, or None for one that is not a place (a contact's zone stored
    before zone_named refused it, such as Factory): no zone known, as when none is stored."""
    try:
        return zone_named(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def candidate_zones(timezone: str | None, phone: str | None) -> tuple[str, ...]:
    """Every zone the contact may be in: the one on record and the phone number's."""
    zones: list[str] = []
    if timezone and _zone(timezone):
        zones.append(timezone)
    if phone:
        zones.extend(z for z in zones_for_phone(phone) if z not in zones)
    return tuple(zones)


def _inside(instant: datetime, zones: list[ZoneInfo], window: Window) -> bool:
    for zone in zones:
        local = instant.astimezone(zone)
        if local.weekday() not in window.weekdays:
            return False
        if not (window.start <= local.time().replace(tzinfo=None) < window.end):
            return False
    return True


def next_send_time(now: datetime, zone_names: tuple[str, ...], window: Window) -> datetime | None:
    """The first instant at or after `now` inside the window in every zone, or None when the zones
    share no such moment in the next two weeks (or no zone is known)."""
    zones = [z for z in (_zone(n) for n in zone_names) if z is not None]
    if not zones:
        return None
    safe = window.clipped()
    if safe.end <= safe.start:
        return None
    if _inside(now, zones, safe):
        return now
    openings: set[datetime] = set()
    for zone in zones:
        first_day = now.astimezone(zone).date()
        for offset in range(LOOK_AHEAD_DAYS):
            day = first_day + timedelta(days=offset)
            opening = _local(day, safe.start, zone)
            if opening > now:
                openings.add(opening)
    for candidate in sorted(openings):
        if _inside(candidate, zones, safe):
            return candidate
    return None


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` o'clock on `day` in `zone`, as UTC. A time that does not exist (a DST gap) is moved
    forward by the gap, as a wall clock would be."""
    naive = datetime.combine(day, at)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    back = instant.astimezone(zone).replace(tzinfo=None)
    if back != naive:  # in a gap: fold=0 lands before it; step forward past it
        instant = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return instant
