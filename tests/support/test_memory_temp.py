"""The run's temporary files go to a memory-backed folder only where it has room, and never over
what whoever runs the tests chose (tests/conftest.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest


@pytest.fixture
def unchosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TMPDIR or temporary root set, and tmp_path standing for the memory-backed folder."""
    for name in ("TMPDIR", "PYTEST_DEBUG_TEMPROOT"):
        monkeypatch.setenv(name, "")  # so that what the test sets is undone too
        monkeypatch.delenv(name)
    monkeypatch.setattr(conftest, "MEMORY_FOLDER", tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # put back after the test
    return tmp_path


def _configure(basetemp: str | None = None) -> None:
    config = SimpleNamespace(option=SimpleNamespace(basetemp=basetemp))
    conftest._temporary_files_in_memory(config)  # type: ignore[arg-type]


def test_a_folder_with_room_takes_the_runs_temporary_files(unchosen: Path) -> None:
    _configure()
    assert os.environ["TMPDIR"] == str(unchosen)
    assert tempfile.gettempdir() == str(unchosen)


def test_a_folder_without_room_is_not_taken(
    unchosen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conftest, "MEMORY_FOLDER_ROOM", 1 << 60)
    _configure()
    assert "TMPDIR" not in os.environ


def test_a_missing_folder_is_not_taken(unchosen: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "MEMORY_FOLDER", unchosen / "none")
    _configure()
    assert "TMPDIR" not in os.environ


@pytest.mark.parametrize("chosen", ["TMPDIR", "PYTEST_DEBUG_TEMPROOT", "--basetemp"])
def test_what_whoever_runs_the_tests_chose_still_decides(
    unchosen: Path, monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    if chosen.startswith("--"):
        _configure(basetemp="/somewhere")
    else:
        monkeypatch.setenv(chosen, "/somewhere")
        _configure()
    assert os.environ.get("TMPDIR") in (None, "/somewhere")
    assert os.environ.get("TMPDIR") != str(unchosen)
