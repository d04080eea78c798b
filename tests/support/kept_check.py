"""The bundled playbook's check (`bot.learning.check`), kept between the test processes of a run
and between runs over the same code.

Each test process checked the bundled playbook the first time one of its tests needed a playbook
(bot.learning.versions.load_checked): every step rendered and linted, 0.4 to 0.5 s of CPU, paid by
every pytest-xdist worker. The answer depends only on the bundle, arbot's code and the libraries
installed, so it is kept in the temporary folder with a SHA-256 of them all: the processes of one
run wait on a lock for the first to check, and a run over the same code reads the answer. A file
changed, added or removed in bot/, playbooks/ or integrations/, a template or the playbook edited,
or a library upgraded is another digest, and a new check; a playbook with a problem keeps failing,
its problems kept with the rest. Any other bundle (a proposal, a copy a test edits) is checked as
before."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

from bot.learning import check
from bot.learning.check import StepCheck
from playbooks.loader import Bundle, load_bundle
from tests.support.kept_answer import kept_answer

ROOT = Path(__file__).resolve().parents[2]
CODE = ("bot", "playbooks", "integrations")
KEPT = "arbot-bundled-check.json"

Check = Callable[[Bundle], list[StepCheck]]


def install() -> None:
    """Have this process's checks of the bundled playbook go through the kept answer."""
    if not getattr(check._check, "kept", False):
        check._check = _keeping(check._check)


def _keeping(original: Check) -> Check:
    def checked(bundle: Bundle) -> list[StepCheck]:
        text = bundle.to_json()
        if text != _bundled():
            return original(bundle)
        return kept_check(text, lambda: original(bundle))

    checked.kept = True  # type: ignore[attr-defined]
    return checked


@cache
def _bundled() -> str:
    return load_bundle().to_json()


def digest(text: str) -> str:
    """What the check of the bundle `text` depends on: the bundle, the code it runs (every file
    of the folders in CODE, and this module), Python's version and every library installed."""
    found = hashlib.sha256(Path(__file__).read_bytes())
    found.update(f"\0{sys.version}\0".encode())
    found.update("\0".join(_libraries()).encode())
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                source = path.read_bytes()
                found.update(f"\0{path.relative_to(ROOT)}\0{len(source)}\0".encode())
                found.update(source)
    found.update(b"\0bundle\0" + text.encode())
    return found.hexdigest()


def _libraries() -> list[str]:
    """Every library installed where this Python looks, by its metadata folder's name, which
    names its version (`Jinja2-3.1.4.dist-info`): reading each one's metadata took 0.15 s."""
    found = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # not a folder (a zip), or gone
            continue
        found += [f"{entry}/{name}" for name in names if name.endswith((".dist-info", ".egg-info"))]
    return sorted(found)


def kept_check(text: str, run: Callable[[], list[StepCheck]]) -> list[StepCheck]:
    """The answer kept for the bundle `text`, or `run`'s, kept for the next process."""
    try:
        key = digest(text)
    except OSError:  # a file removed while it was read (someone editing): check, keeping nothing
        return run()
    steps = kept_answer(KEPT, key, lambda: [dataclasses.asdict(step) for step in run()])
    return [StepCheck(**step) for step in steps]
