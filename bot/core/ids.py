"""The ids people and payloads name. Every id column is a positive INTEGER (four bytes on
PostgreSQL), so a number typed after `/ar assign`, carried by a button or a form, or put in a
payment's metadata is checked against that range before any query sees it: a number beyond it
is no row of ours, not a database error."""

from __future__ import annotations

import re

LARGEST_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: int() also reads "١٢" and refuses "²"


def parse_id(text: str) -> int | None:
    """The id `text` names (ASCII digits, 1 to LARGEST_ID), or None when it names none."""
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= LARGEST_ID else None
