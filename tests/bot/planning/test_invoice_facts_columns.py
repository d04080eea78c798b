"""The open invoices' query and InvoiceFacts agree column for field: each row is made an
InvoiceFacts with `tuple.__new__`, which would take a missing, extra or moved column silently."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from bot.core.dbtypes import Amount
from bot.planning import facts
from bot.planning.facts import INV, InvoiceFacts, open_invoices_query


def test_the_query_reads_a_customer_id_then_each_field_in_order() -> None:
    columns = [column.name for column in open_invoices_query().selected_columns]
    assert columns == ["customer_id", *InvoiceFacts._fields]


def test_a_query_that_no_longer_matches_the_fields_fails_when_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = facts.select

    def one_column_short(*columns: object) -> object:
        return real(*columns[:-1])

    monkeypatch.setattr(facts, "select", one_column_short)
    with pytest.raises(TypeError, match="not InvoiceFacts' fields"):
        open_invoices_query()


def test_a_moved_column_fails_too(monkeypatch: pytest.MonkeyPatch) -> None:
    real = facts.select

    def swapped(*columns: object) -> object:
        first, second, *rest = columns[1:]
        return real(columns[0], second, first, *rest)

    monkeypatch.setattr(facts, "select", swapped)
    with pytest.raises(TypeError, match="not InvoiceFacts' fields"):
        open_invoices_query()


def test_the_invoice_table_still_has_every_field() -> None:
    assert all(name in INV for name in InvoiceFacts._fields)


def _read_on_sqlite(kind: Any, stored: int) -> Any:
    processor = kind._cached_result_processor(sqlite.dialect(), None)
    assert processor is not None
    return processor(stored)


@pytest.mark.parametrize("stored", [0, 1, -1, 5, -5, 366_846_400, 10**18 - 1, -(10**18 - 1)])
def test_an_open_invoices_amounts_are_read_as_the_amount_type_reads_them(stored: int) -> None:
    expected = _read_on_sqlite(Amount(), stored)
    for name in ("total", "balance"):
        read = _read_on_sqlite(open_invoices_query().selected_columns[name].type, stored)
        assert isinstance(read, Decimal)
        assert read.as_tuple() == expected.as_tuple()
