"""With ARBOT_TEMPLATE_CODE set, templates compiled in one process are read back in the next
instead of compiled again, and render exactly as compiled ones: each kind of sandbox its own code
(HTML escaped, text not), a changed text compiled anew, a damaged file compiled again."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from playbooks import render
from playbooks.render import CODE_FOLDER, Renderer, _CodeByText, _Sandbox

CONTEXT = {"name": "Bob & <Sons>"}


def templates(marker: str, greeting: str = "Hello") -> dict[str, str]:
    """A step's four parts; `marker` makes the texts new to this process's caches."""
    return {
        f"t{marker}/subject.txt.j2": f"{greeting} {{{{ name }}}} {marker}",
        f"t{marker}/body.txt.j2": f"{greeting} {{{{ name }}}}",
        f"t{marker}/body.html.j2": f"<p>{greeting} {{{{ name }}}}</p>",
        f"t{marker}/sms.txt.j2": f"{greeting} {{{{ name }}}}",
    }


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new process starts with: no template compiled in memory."""
    for name, kind in (("_TEXT_CODE", "text"), ("_HTML_CODE", "html"), ("_SMS_CODE", "sms")):
        monkeypatch.setattr(render, name, _CodeByText(kind))
    render._compiled.cache_clear()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CODE_FOLDER, str(tmp_path / "code"))
    new_process(monkeypatch)
    return tmp_path / "code"


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiles from here on."""
    names: list[str] = []
    original = _Sandbox.compile

    def counting(self: _Sandbox, source: Any, name: str | None = None, *args: Any) -> Any:
        names.append(str(name))
        return original(self, source, name, *args)

    monkeypatch.setattr(_Sandbox, "compile", counting)
    return names


def rendered(marker: str, greeting: str = "Hello") -> render.Rendered:
    return Renderer(templates(marker, greeting)).render(f"t{marker}", CONTEXT)


def test_the_next_process_reads_the_code_back_and_renders_the_same(
    folder: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    first = rendered(marker)
    assert len(compiled) == 4
    assert sorted(p.parent.name for p in folder.rglob("*.code")) == ["html", "sms", "text", "text"]

    new_process(monkeypatch)
    again = rendered(marker)

    assert len(compiled) == 4  # none compiled again
    assert again == first
    assert again.html == "<p>Hello Bob &amp; &lt;Sons&gt;</p>\n"
    assert again.text == "Hello Bob & <Sons>\n"


def test_a_changed_text_is_compiled_anew_and_rendered_as_it_now_reads(
    folder: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    rendered(marker)
    new_process(monkeypatch)

    changed = rendered(marker, greeting="Dear")

    assert len(compiled) == 8
    assert changed.text == "Dear Bob & <Sons>\n" and changed.sms == "Dear Bob & <Sons>"


def test_a_damaged_file_is_compiled_again(
    folder: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    first = rendered(marker)
    kept = sorted(folder.rglob("*.code"))
    for number, path in enumerate(kept):  # cut short, emptied, or not Jinja's at all
        path.write_bytes([path.read_bytes()[:-7], b"", b"\x00garbage"][number % 3])
    new_process(monkeypatch)

    assert rendered(marker) == first
    assert len(compiled) == 8
    new_process(monkeypatch)  # and kept anew
    assert rendered(marker) == first and len(compiled) == 8


def test_without_the_folder_nothing_is_written(
    tmp_path: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CODE_FOLDER, raising=False)
    monkeypatch.chdir(tmp_path)
    new_process(monkeypatch)

    rendered(uuid.uuid4().hex)

    assert len(compiled) == 4 and list(tmp_path.iterdir()) == []


def test_code_kept_by_another_setup_of_the_sandboxes_is_not_read(
    folder: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another arbot (another finalize, autoescape or filters) keeps its code apart: Jinja itself
    checks only the template's text, so code compiled for another setup would render otherwise."""
    marker = uuid.uuid4().hex
    with monkeypatch.context() as another:
        another.setattr(render, "_setup", lambda: "another-arbot")
        rendered(marker)
    new_process(monkeypatch)

    again = rendered(marker)

    assert len(compiled) == 8  # compiled again, not read back
    assert again.html == "<p>Hello Bob &amp; &lt;Sons&gt;</p>\n"
