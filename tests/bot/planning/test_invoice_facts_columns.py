"""The open invoices' query and InvoiceFacts agree column for field: each row is made an
InvoiceFacts with `tuple.__new__`, which would take a missing, extra or moved column silently."""

from __future__ import annotations

import pytest

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
