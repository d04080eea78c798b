"""Playbook versions: imported as version 1, proposed, activated, rolled back; with their events."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Event, PlaybookVersion
from bot.core.runtime import Runtime
from playbooks.loader import BUNDLED


def _variant(tmp_path: Path) -> Path:
    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    path = tmp_path / "softer.yml"
    path.write_text(BUNDLED.read_text().replace("name: default", "name: softer"))
    return path


def test_the_bundled_playbook_becomes_version_1_and_active(cli: Any, runtime: Runtime) -> None:
    result = cli("playbook", "list")
    assert result.code == 0
    with runtime.sessions() as session:
        versions = session.scalars(select(PlaybookVersion)).all()
    assert [(v.version, v.status, v.name) for v in versions] == [(1, "active", "default")]


def test_propose_activate_and_roll_back(cli: Any, runtime: Runtime, tmp_path: Path) -> None:
    proposed = cli("playbook", "propose", str(_variant(tmp_path)), "--why", "softer copy")
    assert proposed.code == 0, proposed.stderr
    assert "version 2 proposed" in proposed.stdout
    with runtime.sessions() as session:
        statuses = dict(
            session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all()
        )
    assert statuses == {1: "active", 2: "proposed"}

    assert cli("playbook", "activate", "2").code == 0
    with runtime.sessions() as session:
        statuses = dict(
            session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all()
        )
    assert statuses == {1: "retired", 2: "active"}

    rolled = cli("playbook", "rollback")
    assert rolled.code == 0
    assert "version 1 is active again" in rolled.stdout
    with runtime.sessions() as session:
        statuses = dict(
            session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all()
        )
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("playbook.%")).order_by(Event.id)
        ).all()
    assert statuses == {1: "active", 2: "retired"}
    assert kinds == [
        "playbook.activated",
        "playbook.proposed",
        "playbook.activated",
        "playbook.rolled_back",
    ]


def test_a_playbook_that_fails_the_check_cannot_be_proposed(cli: Any, tmp_path: Path) -> None:
    path = _variant(tmp_path)
    (tmp_path / "templates" / "firm" / "body.txt.j2").write_text("Pay or face legal action.")
    result = cli("playbook", "propose", str(path))
    assert result.code == 1
    assert "does not pass `arbot playbook check`" in result.stderr
    assert "legal action" in result.stderr


def test_rollback_without_an_earlier_version_says_so(cli: Any) -> None:
    result = cli("playbook", "rollback")
    assert result.code == 1
    assert "has no earlier version" in result.stderr


def test_activating_an_unknown_version_says_how_to_list_them(cli: Any) -> None:
    result = cli("playbook", "activate", "9")
    assert result.code == 1
    assert "arbot playbook list" in result.stderr
