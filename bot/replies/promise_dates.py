"""The day a customer's reply promises to pay on: "Friday", "by the 30th", "in two weeks",
"end of next month", "3/30", read relative to the day the reply arrived.

`promised_date` lists what each phrase means. Dates in the past or more than a year ahead are not
promises; when a reply names several dates, the one nearest a payment word wins.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from calendar import monthrange
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from integrations.base.inbound import PROMISE_HORIZON_DAYS

# What "next Friday" means: the Friday of next calendar week, or the coming Friday.
NextWeekday = Literal["next_week", "coming"]

_MONTH_NAMES = (
    "jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
    "aug august", "sep sept september", "oct october", "nov november", "dec december",
)  # fmt: skip
_MONTHS = {name: n for n, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}
_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tues": 1, "tue": 1, "wednesday": 2, "thursday": 3,
    "thurs": 3, "thur": 3, "thu": 3, "friday": 4, "fri": 4, "saturday": 5, "sunday": 6,
}  # fmt: skip
_COUNTS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a couple": 2,
    "couple of": 2, "a few": 3, "few": 3,
}  # fmt: skip
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")\b"
_COUNT = r"(\d{1,3}|" + "|".join(sorted(_COUNTS, key=len, reverse=True)) + ")"
_ORD = r"(?:st|nd|rd|th)?"
_Reader = Callable[[re.Match[str]], date | None]
_PAY_ANCHOR = re.compile(
    r"\b(?:pay|paying|payment|settle|transfer|wire|send|cheque|check|processed|released|go out)\b"
)


def _month_end(day: date) -> date:
    return day.replace(day=monthrange(day.year, day.month)[1])


def _first_of_month(day: date, months_ahead: int) -> date:
    return _add_months(day.replace(day=1), months_ahead)


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def _on_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _nearest(today: date, month: int, day: int) -> date | None:
    """A day and month without a year: the occurrence closest to today (so "Jan 5" said in
    December is next January, and "March 2" said on March 16 is two weeks ago)."""
    options = [_on_or_none(today.year + k, month, day) for k in (-1, 0, 1)]
    return min((d for d in options if d), key=lambda d: abs(d - today), default=None)


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text) + (2000 if len(text) == 2 else 0)


def _dated(today: date, year: int | None, month: int, day: int) -> date | None:
    return _nearest(today, month, day) if year is None else _on_or_none(year, month, day)


def _day_of_month(today: date, day: int) -> date | None:
    if not 1 <= day <= 31:
        return None
    month = today if day >= today.day else _first_of_month(today, 1)
    return month.replace(day=min(day, monthrange(month.year, month.month)[1]))


def _weekday(today: date, name: str, qualifier: str | None, rule: NextWeekday) -> date:
    wanted = _WEEKDAYS[name]
    if qualifier == "next" and rule == "next_week":
        return today + timedelta(days=7 - today.weekday() + wanted)
    return today + timedelta(days=(wanted - today.weekday()) % 7 or 7)


def _after(today: date, count: int, unit: str, business: bool) -> date:
    if unit.startswith("month"):
        return _add_months(today, count)
    if unit.startswith("week"):
        return today + timedelta(weeks=count)
    if not business:
        return today + timedelta(days=count)
    day = today
    while count > 0:
        day += timedelta(days=1)
        count -= day.weekday() < 5
    return day


def _friday(today: date, weeks_ahead: int) -> date:
    return max(today, today + timedelta(days=4 - today.weekday() + 7 * weeks_ahead))


def _finders(today: date, rule: NextWeekday) -> Iterator[tuple[str, _Reader]]:
    """(pattern, reading) pairs, most specific first; a later pattern never reads words an
    earlier one has read."""
    month_day = rf"\b{_MONTH}\s+(\d{{1,2}}){_ORD}\b(?:,?\s+(\d{{4}}))?"
    day_month = rf"\b(\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?"
    yield r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", lambda m: _on_or_none(*map(int, m.groups()))
    yield (
        r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?![\d.])",
        lambda m: _dated(today, _year(m[3]), int(m[2]), int(m[1])),
    )
    yield (
        r"(?<![\d/$€£.,])(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])",
        lambda m: (
            _dated(today, _year(m[3]), int(m[2]), int(m[1]))
            if int(m[1]) > 12
            else _dated(today, _year(m[3]), int(m[1]), int(m[2]))
        ),
    )
    yield month_day, lambda m: _dated(today, _year(m[3]), _MONTHS[m[1]], int(m[2]))
    yield day_month, lambda m: _dated(today, _year(m[3]), _MONTHS[m[2]], int(m[1]))
    yield r"\bday after tomorrow\b", lambda m: today + timedelta(days=2)
    yield r"\b(?:tomorrow|tomorow|tmrw|tmr)\b", lambda m: today + timedelta(days=1)
    yield r"\b(?:today|tonight|this (?:afternoon|evening))\b", lambda m: today
    yield r"\bend of (?:the )?next month\b", lambda m: _month_end(_first_of_month(today, 1))
    yield r"\bend of (?:the |this )?month\b|\bmonth[- ]end\b|\beom\b", lambda m: _month_end(today)
    yield (
        r"\b(?:first|1st) of (?:the |next )?month\b",
        lambda m: today if today.day == 1 else _first_of_month(today, 1),
    )
    yield r"\b(?:end of )?(?:the )?next week(?:'s)?\b", lambda m: _friday(today, 1)
    yield (
        r"\b(?:end of (?:the |this )?week|(?:within the|this) week)\b",
        lambda m: _friday(today, 0),
    )
    yield (
        rf"\b(?:in|within|about)\s+(?:the next\s+)?{_COUNT}\s+(business |working )?(day|week|month)s?\b",
        (lambda m: _after(today, _count(m[1]), m[3], bool(m[2]))),
    )
    yield r"\bin a fortnight\b", lambda m: today + timedelta(days=14)
    yield rf"\b{_WEEKDAY}\s+next week\b", lambda m: _weekday(today, m[1], "next", "next_week")
    yield rf"\b(?:(next|this|coming)\s+)?{_WEEKDAY}", lambda m: _weekday(today, m[2], m[1], rule)
    yield r"\b(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b", lambda m: _day_of_month(today, int(m[1]))


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _COUNTS[word]


@dataclass(frozen=True)
class _Found:
    start: int
    end: int
    rank: int  # the finder's place: an explicit date outranks a weekday beside it
    day: date


def _candidates(text: str, today: date, rule: NextWeekday) -> list[_Found]:
    starts: list[int] = []  # the spans read so far, in order; they never overlap
    ends: list[int] = []
    found = []
    for rank, (pattern, read) in enumerate(_finders(today, rule)):
        for match in re.finditer(pattern, text):
            start, end = match.span()
            # Only the last span starting before this match ends can reach into it.
            before = bisect_left(starts, end)
            if before and ends[before - 1] > start:
                continue
            starts.insert(before, start)
            ends.insert(before, end)
            day = read(match)
            if day is not None and today <= day <= today + timedelta(days=PROMISE_HORIZON_DAYS):
                found.append(_Found(start, end, rank, day))
    return found


def _distance(anchors: list[int], found: _Found) -> int:
    """How far `found` is from the nearest of `anchors` (in order), 0 when there are none."""
    if not anchors:
        return 0
    inside = bisect_left(anchors, found.start) < bisect_right(anchors, found.end)
    if inside:
        return 0
    after = bisect_right(anchors, found.end)
    nearest = []
    if after < len(anchors):
        nearest.append(anchors[after] - found.end)
    if after:
        nearest.append(found.start - anchors[after - 1])
    return min(nearest)


def promised_date(text: str, today: date, next_weekday: NextWeekday = "next_week") -> date | None:
    """The day a reply names for paying, read on `today`; None when it names none.

    - "tomorrow", "today", "in 10 days", "in two weeks", "within 5 business days", "in a month".
    - "Friday", "on Friday", "this Friday": the next Friday after today (never today).
      "next Friday": with `next_weekday="next_week"` (the default) the Friday of next calendar
      week (Monday the 16th → Friday the 27th); with "coming", the next Friday after today. Said
      on a Friday, both mean a week later.
    - "by the 30th", "30th": that day this month, or next month once it has passed; a day the month
      lacks becomes its last day ("the 31st" in April is April 30).
    - "end of (the) month", "month-end": the month's last day; "end of next month" likewise.
      "this week", "end of the week": this Friday; "next week": next week's Friday — a vague span
      takes its last working day, so no reminder lands before the time the customer named is over.
    - "March 30", "30 March", "30th of March", "3/30" (month first unless the first number is over
      12), "30.03.2026" (day first), "2026-03-30".
    - A date without a year is the occurrence closest to today. Dates in the past, with or without
      a year, are rejected (None) rather than rolled a year ahead: in a reply they are almost always
      the day something was paid or sent, not a promise. So are dates more than a year ahead.

    When several dates qualify, the one nearest a payment word ("pay", "send", "cheque"...) wins,
    then the most explicit ("Tuesday 24th March" is March 24), then the earliest in the text.
    """
    text = normalise_reply(text)
    anchors = [m.start() for m in _PAY_ANCHOR.finditer(text)]

    def closeness(f: _Found) -> tuple[int, int, int]:
        return _distance(anchors, f), f.rank, f.start

    found = _candidates(text, today, next_weekday)
    return min(found, key=closeness).day if found else None


def normalise_reply(text: str) -> str:
    """The reply as the rules and the date finders read it: lower case, straight apostrophes,
    runs of spaces and tabs as one space."""
    straight = text.replace("\u2019", "'").replace("\u2018", "'").replace("\t", " ")
    # Two spaces first: a pattern led by a single space would stop at every space of a long reply.
    return _SPACES.sub(" ", straight).lower()


_SPACES = re.compile("  +")
