"""The benchmarks' "same rows alone" figures at a tiny size: the rows a run wrote, read back, are
written again exactly (read back once more, they are the same rows), and each line they are shown
under gets them as two lines beside its floor, never targets."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks import payments, schema_rows
from benchmarks.books import book_csv, import_book
from benchmarks.databases import POSTGRESQL, SQLITE, database, open_runtime, plain_connection
from benchmarks.options import Options
from benchmarks.results import target_text
from tests.conftest import POSTGRES

# The test database (a copy of the migrated SQLite file, the emptied PostgreSQL test schema) as
# the benchmark's empty database, rather than one made and migrated for it.
ON_TEST_DATABASE = [
    pytest.param(SQLITE, "sqlite", id=SQLITE),
    pytest.param(
        POSTGRESQL,
        "postgresql",
        id=POSTGRESQL,
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES, reason="PostgreSQL does not answer"),
        ],
    ),
]


@pytest.mark.parametrize(("kind", "database_url"), ON_TEST_DATABASE, indirect=["database_url"])
def test_the_rows_of_an_import_are_written_again_exactly(
    kind: str, database_url: str, tmp_path: Path
) -> None:
    url = database_url  # imported into; written again into a database made for the benchmark
    with database(kind, tmp_path, "again") as again:
        runtime = open_runtime(url)
        open_runtime(again).close()
        before = schema_rows.snapshot_of(again)
        import_book(runtime, book_csv(tmp_path, 40))
        runtime.close()
        written = schema_rows.written_into(url, before)

        connection = plain_connection(again)
        try:
            schema_rows.write(connection, written)
            assert schema_rows.written_since(connection, before) == written
            connection.rollback()
        finally:
            connection.close()
        assert schema_rows.written_into(again, before).rows() == 0  # rolled back
    added = {table.name: len(table.added) for table in written.tables}
    assert added["invoices"] == 40 and added["customers"] == 8


@pytest.fixture
def heap_of_the_benchmark_alone() -> Iterator[None]:
    """The benchmark collects the heap before each timing (gc.collect()), as a process of its own
    would hold it; in a test worker the heap is every earlier test's too, and each collection
    walked it all (about 0.1 s alone, more late in the fast run; four of them). The worker's
    objects are set aside (gc.freeze()) while the benchmark runs, so that its collections walk
    what it made, and given back after."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("kind", "database_url"), ON_TEST_DATABASE, indirect=["database_url"])
@pytest.mark.usefixtures("heap_of_the_benchmark_alone")
def test_import_payments_shows_its_rows_alone_beside_its_floor(
    kind: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def migrated(kind_: str, folder: Path, name: str) -> Iterator[str]:
        assert kind_ == kind
        yield database_url

    monkeypatch.setattr(payments, "database", migrated)
    options = Options(folder=tmp_path, databases=(kind,), runs=1, invoices=60, payments=12)

    line, alone, unchecked = payments.measure(kind, options)

    assert alone.name == f"import-payments: {schema_rows.ALONE}"
    assert unchecked.name == f"import-payments: {schema_rows.UNCHECKED}"
    for shown in (alone, unchecked):
        assert shown.shown_only and shown.misses() == []
        assert target_text(shown) == "not a target"
        assert shown.value > 0 and shown.floor == line.floor and shown.database == kind
    assert not line.shown_only and line.ratio_target is not None
    assert "payments 12" in alone.note and "invoices" in alone.note  # balances changed
