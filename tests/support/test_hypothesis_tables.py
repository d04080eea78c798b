"""The UTF-8 table laid down for hypothesis is the one it would work out, and hypothesis reads it."""

from __future__ import annotations

import gzip
import json
import sys
import types
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import configuration
from hypothesis.internal import charmap
from hypothesis.internal.intervalsets import IntervalSet

from tests.support.hypothesis_tables import (
    SURROGATES,
    lay_down_quietly,
    lay_down_utf8_table,
    utf8_intervals,
)

NATIVE_UTF32 = "utf-32-le" if sys.byteorder == "little" else "utf-32-be"  # as array("I") lays out


@pytest.fixture
def fresh_storage(tmp_path: Path) -> Iterator[Path]:
    """Hypothesis's storage in an empty folder, as on a fresh checkout."""
    before = configuration.storage_directory(intent_to_write=False).home_directory
    configuration.set_hypothesis_home_dir(tmp_path / ".hypothesis")
    try:
        yield tmp_path / ".hypothesis"
    finally:
        configuration.set_hypothesis_home_dir(before)


def test_utf8_writes_every_code_point_but_the_surrogates_and_reads_each_back() -> None:
    encodable, non_roundtrip = utf8_intervals()

    for low, high in encodable:  # a whole interval at once: C speed, not 1.1 million calls
        text = array("I", range(low, high + 1)).tobytes().decode(NATIVE_UTF32)
        assert len(text) == high - low + 1 and ord(text[0]) == low and ord(text[-1]) == high
        assert text.encode("utf-8").decode("utf-8") == text
    for point in range(SURROGATES[0], SURROGATES[1] + 1):
        with pytest.raises(UnicodeEncodeError):
            chr(point).encode("utf-8")
    covered = sum(high - low + 1 for low, high in encodable)
    assert covered + SURROGATES[1] - SURROGATES[0] + 1 == 0x110000
    assert non_roundtrip == []


def test_hypothesis_takes_the_table_laid_down_instead_of_working_it_out(
    fresh_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = lay_down_utf8_table()
    # Were the table not read, hypothesis would walk code points 0..maxunicode: none at all here.
    monkeypatch.setattr(charmap, "sys", types.SimpleNamespace(maxunicode=-1))

    encodable, non_roundtrip = charmap.intervals_from_codec.__wrapped__("utf-8")

    assert written.is_relative_to(fresh_storage)
    assert encodable == IntervalSet(utf8_intervals()[0]) and not non_roundtrip


def test_a_table_already_there_is_left_as_it_is(fresh_storage: Path) -> None:
    written = lay_down_utf8_table()
    with gzip.GzipFile(written, "wb", mtime=1) as out:
        out.write(json.dumps([[[0, 127]], []]).encode())

    assert lay_down_utf8_table() == written
    with gzip.GzipFile(written) as kept:
        assert json.load(kept) == [[[0, 127]], []]


def test_a_hypothesis_without_the_tables_name_costs_only_time(
    fresh_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(charmap, "charmap_file")

    assert lay_down_quietly() is None
    assert not fresh_storage.exists()


def test_storage_that_cannot_be_written_costs_only_time(tmp_path: Path) -> None:
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    before = configuration.storage_directory(intent_to_write=False).home_directory
    configuration.set_hypothesis_home_dir(blocked / ".hypothesis")
    try:
        assert lay_down_quietly() is None
    finally:
        configuration.set_hypothesis_home_dir(before)
