"""Playbook versions in the database: imported, proposed, activated, rolled back; never edited.

The bundled file becomes version 1 and active the first time a plan needs a playbook. A proposal is
a new version in state `proposed`; activating it retires the active one; rolling back reactivates
the version that was active before. Every change is one conditional UPDATE plus an Event.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import PlaybookVersion
from bot.learning.check import check_bundle
from playbooks.loader import Bundle, PlaybookError, load_bundle


def load_checked(path: Path | None) -> Bundle:
    """Read a playbook and refuse it unless every step renders and passes the linter."""
    try:
        bundle = load_bundle(path)
    except PlaybookError as exc:
        raise UserError(str(exc)) from None
    problems = [
        f"{bundle.label}: {check.ladder} step {check.step}: {problem}"
        for check in check_bundle(bundle)
        for problem in check.problems
    ]
    if problems:
        raise UserError(
            "the playbook does not pass `arbot playbook check`:\n" + "\n".join(problems)
        )
    return bundle


def active_version(session: Session) -> PlaybookVersion | None:
    return session.scalars(
        select(PlaybookVersion).where(PlaybookVersion.status == "active")
    ).first()


def ensure_active(session: Session, now: datetime) -> PlaybookVersion:
    """The active version; on first use, the bundled playbook imported as version 1."""
    current = active_version(session)
    if current is not None:
        return current
    bundle = load_checked(None)
    version = _add(session, bundle, now, status="active", by="system", rationale="bundled playbook")
    version.activated_at = now
    audit.record(session, now, "playbook.activated", payload={"version": version.version})
    return version


def all_versions(session: Session) -> list[PlaybookVersion]:
    """Every stored version, newest first."""
    return list(session.scalars(select(PlaybookVersion).order_by(PlaybookVersion.version.desc())))


def bundle_of(version: PlaybookVersion) -> Bundle:
    return Bundle.from_json(version.content, f"playbook version {version.version}")


def propose(
    session: Session, path: Path, by: str, rationale: str, now: datetime
) -> PlaybookVersion:
    bundle = load_checked(path)
    current = ensure_active(session, now)
    version = _add(session, bundle, now, status="proposed", by=by, rationale=rationale)
    version.parent_id = current.id
    audit.record(
        session,
        now,
        "playbook.proposed",
        actor=by,
        payload={"version": version.version, "rationale": rationale},
    )
    return version


def activate(session: Session, number: int, by: str, now: datetime) -> PlaybookVersion:
    target = session.scalars(
        select(PlaybookVersion).where(PlaybookVersion.version == number)
    ).first()
    if target is None:
        raise UserError(f"there is no playbook version {number}; `arbot playbook list` shows them")
    if target.status == "active":
        raise UserError(f"playbook version {number} is already active")
    current = ensure_active(session, now)
    _switch(session, current, target, by, now)
    audit.record(
        session,
        now,
        "playbook.activated",
        actor=by,
        payload={"version": number, "replaces": current.version},
    )
    return target


def rollback(session: Session, by: str, now: datetime) -> PlaybookVersion:
    current = ensure_active(session, now)
    previous = session.get(PlaybookVersion, current.parent_id) if current.parent_id else None
    if previous is None:
        raise UserError(f"playbook version {current.version} has no earlier version to go back to")
    _switch(session, current, previous, by, now)
    audit.record(
        session,
        now,
        "playbook.rolled_back",
        actor=by,
        payload={"from": current.version, "to": previous.version},
    )
    return previous


def _switch(
    session: Session, current: PlaybookVersion, target: PlaybookVersion, by: str, now: datetime
) -> None:
    retired = session.execute(
        update(PlaybookVersion)
        .where(PlaybookVersion.id == current.id, PlaybookVersion.status == "active")
        .values(status="retired")
    )
    if retired.rowcount != 1:  # type: ignore[attr-defined]
        raise UserError("the active playbook changed meanwhile; look again and retry")
    session.execute(
        update(PlaybookVersion)
        .where(PlaybookVersion.id == target.id)
        .values(status="active", approved_by=by, activated_at=now)
    )
    if target.parent_id is None and target.id != current.id and target.version > current.version:
        target.parent_id = current.id
    session.expire_all()


def _add(
    session: Session, bundle: Bundle, now: datetime, *, status: str, by: str, rationale: str
) -> PlaybookVersion:
    latest = session.scalar(select(func.max(PlaybookVersion.version))) or 0
    version = PlaybookVersion(
        name=bundle.playbook.name,
        version=latest + 1,
        content=bundle.to_json(),
        status=status,
        proposed_by=by,
        rationale=rationale,
        approved_by=by if status == "active" else None,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version
