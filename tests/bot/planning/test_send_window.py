"""Quiet hours, business hours and timezones (RULES A1-A3, D10)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from bot.planning.send_window import Window, candidate_zones, next_send_time

LA = ("America/Los_Angeles",)
ALL_DAY = frozenset(range(7))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("local_now", "expected_local"),
    [
        ("2026-06-10T07:59:00-07:00", "2026-06-10T08:00:00-07:00"),  # held until 08:00
        ("2026-06-10T08:00:00-07:00", "2026-06-10T08:00:00-07:00"),
        ("2026-06-10T20:59:00-07:00", "2026-06-10T20:59:00-07:00"),  # still sends
        ("2026-06-10T21:00:00-07:00", "2026-06-11T08:00:00-07:00"),  # deferred to the morning
    ],
)
def test_quiet_hours_in_the_contacts_zone(local_now: str, expected_local: str) -> None:
    widest = Window(time(0), time(23, 59), ALL_DAY)  # even a 24-hour setting keeps 08:00-21:00
    assert next_send_time(utc(local_now), LA, widest) == utc(expected_local)


def test_business_hours_and_weekends() -> None:
    friday_evening = utc("2026-06-12T17:30:00-07:00")
    assert next_send_time(friday_evening, LA, Window()) == utc("2026-06-15T09:00:00-07:00")


def test_conflicting_zones_allow_only_the_hours_both_share() -> None:
    # RULES A2: an Eastern phone and a Pacific address: 08:00-21:00 in both is 11:00-21:00 Eastern.
    widest = Window(time(0), time(23, 59), ALL_DAY)
    zones = candidate_zones("America/Los_Angeles", "+12125550100")
    assert zones == ("America/Los_Angeles", "America/New_York")
    assert next_send_time(utc("2026-06-10T09:00:00-04:00"), zones, widest) == utc(
        "2026-06-10T11:00:00-04:00"
    )
    assert next_send_time(utc("2026-06-10T20:30:00-04:00"), zones, widest) == utc(
        "2026-06-10T20:30:00-04:00"
    )
    assert next_send_time(utc("2026-06-10T21:00:00-04:00"), zones, widest) == utc(
        "2026-06-11T11:00:00-04:00"
    )


def test_an_unknown_zone_is_never_assumed() -> None:
    assert candidate_zones(None, None) == ()
    assert next_send_time(utc("2026-06-10T12:00:00+00:00"), (), Window()) is None


@pytest.mark.parametrize(
    "stored", ["Factory", "localtime", "posix/Factory", "posixrules", "right/America/New_York"]
)
def test_a_zone_stored_before_it_was_refused_counts_as_unknown(stored: str) -> None:
    """A contact's zone the ledger took before such names were refused is no zone: the phone's
    zones, if any, decide, and with none the reminder is held for a person (RULES A3)."""
    assert candidate_zones(stored, None) == ()
    assert candidate_zones(stored, "+12125550100") == ("America/New_York",)


def test_a_phone_number_alone_gives_its_zone() -> None:
    assert candidate_zones(None, "+18085550100") == ("Pacific/Honolulu",)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Spring forward (2026-03-08 in the US): 09:00 is 14:00 UTC before, 13:00 UTC after.
        ("2026-03-06T23:00:00+00:00", "2026-03-09T13:00:00+00:00"),
        # Fall back (2026-11-01): 09:00 EST is 14:00 UTC.
        ("2026-10-31T23:00:00+00:00", "2026-11-02T14:00:00+00:00"),
    ],
)
def test_daylight_saving_changes(now: str, expected: str) -> None:
    assert next_send_time(utc(now), ("America/New_York",), Window()) == utc(expected)


def test_a_window_opening_inside_a_dst_gap_moves_forward_like_a_wall_clock() -> None:
    night_owls = Window(time(8), time(21), ALL_DAY)
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29; with an 08:00 start nothing is affected, but
    # the hard limit also holds on that day:
    assert next_send_time(utc("2026-03-29T05:00:00+00:00"), ("Europe/Berlin",), night_owls) == utc(
        "2026-03-29T08:00:00+02:00"
    )
