"""Amount's reading on SQLite, by one C call per value, gives what its process_result_value gives:
the stored count of 1/10,000ths as the same Decimal, with four places, and None as None."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.dialects import sqlite

from bot.core.dbtypes import Amount

DIALECT = sqlite.dialect()


@pytest.mark.parametrize(
    "stored", [None, 0, 1, -1, 5, -5, 366_846_400, 10**18 - 1, -(10**18 - 1), 2**63 - 1, -(2**63)]
)
def test_the_fast_reading_is_the_exact_one(stored: int | None) -> None:
    amount = Amount()
    read = amount._cached_result_processor(DIALECT, None)
    assert read is not None
    expected = amount.process_result_value(stored, DIALECT)
    got = read(stored)
    if expected is None:
        assert got is None
    else:
        assert isinstance(got, Decimal)
        assert got.as_tuple() == expected.as_tuple()


def test_a_stored_value_that_is_not_a_count_is_refused_not_rounded() -> None:
    read = Amount()._cached_result_processor(DIALECT, None)
    assert read is not None
    with pytest.raises(TypeError):
        read(1.5)
