"""The bundled playbook's check kept between test processes (tests/support/kept_check.py): read
back only under the digest of what it depends on, and only for the bundled playbook."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from bot.learning.check import StepCheck
from playbooks.loader import Bundle, load_bundle
from tests.support import kept_check


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _runs(steps: list[StepCheck], ran: list[int]) -> object:
    def run() -> list[StepCheck]:
        ran.append(1)
        return steps

    return run


def test_the_first_process_checks_and_the_next_reads_its_answer(temporary: Path) -> None:
    ran: list[int] = []
    steps = [StepCheck("standard", "gentle", "gentle", ["a problem"], ["es"])]
    text = load_bundle().to_json()

    first = kept_check.kept_check(text, _runs(steps, ran))  # type: ignore[arg-type]
    again = kept_check.kept_check(text, _runs([], ran))  # type: ignore[arg-type]

    assert ran == [1]
    assert first == again == steps  # its problems with it: a failing playbook keeps failing


def test_an_answer_kept_under_another_digest_is_checked_again(temporary: Path) -> None:
    kept = temporary / kept_check.KEPT
    kept.write_text(json.dumps({"digest": "another", "answer": []}))
    ran: list[int] = []
    steps = [StepCheck("standard", "gentle", "gentle")]

    assert kept_check.kept_check("{}", _runs(steps, ran)) == steps  # type: ignore[arg-type]
    assert ran == [1]
    assert json.loads(kept.read_text())["digest"] == kept_check.digest("{}")


def test_the_digest_follows_the_code_and_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "bot" / "module.py"
    code.parent.mkdir()
    code.write_text("A = 1\n")
    monkeypatch.setattr(kept_check, "ROOT", tmp_path)
    before = kept_check.digest("{}")

    code.write_text("A = 2\n")
    edited = kept_check.digest("{}")
    (tmp_path / "bot" / "other.py").write_text("")

    assert len({before, edited, kept_check.digest("{}"), kept_check.digest("{ }")}) == 4


def test_only_the_bundled_playbook_is_kept(temporary: Path) -> None:
    """A proposal or an edited copy is checked by the check itself, every time."""
    checked: list[str] = []

    def check(bundle: Bundle) -> list[StepCheck]:
        checked.append(bundle.label)
        return [StepCheck("standard", "gentle", bundle.label)]

    keeping = kept_check._keeping(check)
    bundled = load_bundle()
    data = json.loads(bundled.to_json())
    data["templates"]["unused.txt.j2"] = "Hello"
    edited = Bundle.from_json(json.dumps(data), "edited")

    assert keeping(edited) == keeping(edited) == [StepCheck("standard", "gentle", "edited")]
    assert not (temporary / kept_check.KEPT).exists()
    assert keeping(bundled) == keeping(bundled)
    assert checked == ["edited", "edited", bundled.label]


def test_a_file_gone_while_the_digest_reads_it_has_the_check_run(
    temporary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone editing the tree while a run starts: the check runs, and nothing is kept."""

    def gone(text: str) -> str:
        raise FileNotFoundError("bot/removed.py")

    monkeypatch.setattr(kept_check, "digest", gone)
    ran: list[int] = []
    steps = [StepCheck("standard", "gentle", "gentle")]

    assert kept_check.kept_check("{}", _runs(steps, ran)) == steps  # type: ignore[arg-type]
    assert ran == [1] and not (temporary / kept_check.KEPT).exists()
