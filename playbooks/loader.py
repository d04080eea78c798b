"""Reading a playbook: the YAML file and its templates folder, validated into a Bundle.

Every error names the file, the place inside it and what is wrong, e.g.
`default.yml: tiers.standard[2].offset_days: Input should be a valid integer`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from babel.core import Locale, UnknownLocaleError
from pydantic import ValidationError

from playbooks.model import Playbook

BUNDLED = Path(__file__).parent / "default.yml"
TEMPLATE_PARTS = ("subject.txt.j2", "body.txt.j2", "body.html.j2", "sms.txt.j2")
# A template's translations sit beside its English parts, one folder per language named by its
# tag as arbot stores it (`templates/polite/es/`, `templates/polite/fr-CA/`); English, the parts
# in the template's own folder, is what every other language falls back to.
_LANGUAGE_FOLDER = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?")


class PlaybookError(ValueError):
    """A playbook that cannot be used; the message says where and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Bundle:
    """A playbook with the template sources it uses: what a PlaybookVersion stores."""

    playbook: Playbook
    source: str  # the YAML text
    templates: dict[str, str] = field(default_factory=dict)  # "polite/sms.txt.j2" -> source
    label: str = "playbook"

    @property
    def languages(self) -> list[str]:
        """The languages its templates are written in besides English, e.g. ["de", "es", "fr"]."""
        return sorted({key.split("/")[1] for key in self.templates if key.count("/") == 2})

    def to_json(self) -> str:
        return json.dumps({"playbook": self.source, "templates": self.templates}, sort_keys=True)

    @classmethod
    def from_json(cls, content: str, label: str) -> Bundle:
        data = json.loads(content)
        return cls(
            playbook=parse_playbook(data["playbook"], label),
            source=data["playbook"],
            templates=dict(data["templates"]),
            label=label,
        )


def load_bundle(path: Path | None = None) -> Bundle:
    """Read a playbook file and the `templates/` folder beside it (the bundled one by default).
    The bundled playbook, read before and none of its files changed since, is handed out again
    (a copy) without reading them."""
    path = path or BUNDLED
    if path != BUNDLED:
        return _read_bundle(path)
    global _BUNDLED_READ
    try:
        files = _files_as_they_are(path)
    except OSError:
        return _read_bundle(path)  # says what is missing
    if _BUNDLED_READ is None or _BUNDLED_READ[0] != files:
        _BUNDLED_READ = (files, _read_bundle(path))
    read = _BUNDLED_READ[1]
    return Bundle(
        playbook=read.playbook.model_copy(deep=True),
        source=read.source,
        templates=dict(read.templates),
        label=read.label,
    )


# The bundled playbook as last read, with its files as they were: reading it takes about 8 ms
# (some 150 files), each time a database without a playbook first needs one.
_BUNDLED_READ: tuple[tuple[tuple[str, int, int, int], ...], Bundle] | None = None


def _files_as_they_are(path: Path) -> tuple[tuple[str, int, int, int], ...]:
    """The playbook file and everything in the templates folder beside it, each with its
    modification time, size and inode: any file changed, added, removed or replaced changes it."""
    found = []
    for name in [str(path), *_walked(path.parent / "templates")]:
        stat = os.stat(name)
        found.append((name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(found)


def _walked(folder: Path) -> list[str]:
    names = []
    for root, folders, files in os.walk(folder, onerror=_raise):
        folders.sort()
        names.append(root)
        names.extend(os.path.join(root, file) for file in sorted(files))
    return names


def _raise(error: OSError) -> None:
    raise error


def _read_bundle(path: Path) -> Bundle:
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError([f"{path}: no such file"]) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise PlaybookError([f"{path}: cannot be read as a YAML file ({exc})"]) from None
    playbook = parse_playbook(source, str(path))
    folder = path.parent / "templates"
    templates: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(playbook.templates_used()):
        for part in TEMPLATE_PARTS:
            file = folder / name / part
            if file.is_file():
                templates[f"{name}/{part}"] = file.read_text(encoding="utf-8")
            else:
                missing.append(f"{path}: template {name!r} has no {file}")
        for language in _language_folders(folder / name, missing):
            for part in TEMPLATE_PARTS:
                file = folder / name / language / part
                if file.is_file():
                    templates[f"{name}/{language}/{part}"] = file.read_text(encoding="utf-8")
                else:
                    missing.append(
                        f"{path}: template {name!r} in language {language!r} has no {file}"
                    )
    if missing:
        raise PlaybookError(missing)
    return Bundle(playbook=playbook, source=source, templates=templates, label=str(path))


def _language_folders(folder: Path, problems: list[str]) -> list[str]:
    """The language folders inside a template's folder; one not named as a known language tag is
    a problem (a folder `Spanish` or `es_ES` would otherwise be silently ignored)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir():
            continue
        name = entry.name
        if _LANGUAGE_FOLDER.fullmatch(name) and _known_language(name):
            found.append(name)
        else:
            problems.append(
                f"{entry}: not a language folder; name it by a language tag such as es, fr, de "
                "or fr-CA"
            )
    return found


def _known_language(tag: str) -> bool:
    try:
        Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True


_PARSED: dict[str, Playbook] = {}  # by source text; every plan parses the stored playbook again
_PARSED_LIMIT = 64


def parse_playbook(source: str, label: str) -> Playbook:
    """The playbook a YAML text describes, or a PlaybookError naming `label` and each problem. A
    text parsed before is handed out again (a copy) without parsing it anew; errors are not
    remembered."""
    known = _PARSED.get(source)
    if known is None:
        known = _parse(source, label)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[source] = known
    return known.model_copy(deep=True)


def _parse(source: str, label: str) -> Playbook:
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlaybookError([f"{label}: {where}not valid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise PlaybookError([f"{label}: expected a mapping with name, tiers and steps at the top"])
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        raise PlaybookError(
            [f"{label}: {_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
        ) from None


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top)"


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")
