"""The learning loop's weekly look back, for a person: store, approve, reject and show proposals.

The evidence and the rules that turn it into proposals are in `bot.learning.rules`. A proposal is
stored as a `proposed` PlaybookVersion and changes nothing until a person approves it; a change
already waiting is not proposed twice, and one a person rejected is not proposed again within the
evidence window.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.models import Event, PlaybookVersion
from bot.core.runtime import Runtime
from bot.learning.diff import version_diff
from bot.learning.proposal import Proposal
from bot.learning.rules import WEEKS, evaluate
from bot.learning.versions import activate, ensure_active, propose
from integrations.base.slack import ProposalView

PROPOSER = "learning"


@dataclass(frozen=True)
class ProposalDecision:
    changed: bool
    version: int
    status: str
    message: str  # what to tell the person who clicked


# --- storing, approving, rejecting ----------------------------------------------------------


def propose_all(
    session: Session, today: date, now: datetime, timezone: str, weeks: int = WEEKS
) -> list[PlaybookVersion]:
    """Store each supported change as a `proposed` PlaybookVersion (activating nothing); the
    evidence counts days in the business's `timezone`."""
    waiting, refused = _changes_in_play(session, now, weeks)
    stored = []
    for proposal in evaluate(session, today, timezone, weeks):
        if proposal.change in waiting or proposal.change in refused:
            continue
        version = _store(session, proposal, now)
        waiting.add(proposal.change)
        stored.append(version)
    return stored


def weekly_proposals(runtime: Runtime, today: date) -> list[ProposalView]:
    """The weekly job's part: store what the evidence supports, and return the cards to post.
    Slack is called by the caller, after this transaction has committed."""
    with runtime.writing() as session:
        stored = propose_all(session, today, runtime.clock.now(), runtime.settings.timezone)
        return [view_of(session, version.id) for version in stored]


def _store(session: Session, proposal: Proposal, now: datetime) -> PlaybookVersion:
    with tempfile.TemporaryDirectory(prefix="arbot-proposal-") as folder:
        path = Path(folder) / "playbook.yml"
        path.write_text(proposal.playbook_yaml, encoding="utf-8")
        for name, source in proposal.templates.items():
            file = Path(folder) / "templates" / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(source, encoding="utf-8")
        version = propose(session, path, PROPOSER, proposal.rationale, now)
    audit.record(
        session,
        now,
        "playbook.evidence",
        actor=PROPOSER,
        payload={
            "version": version.version,
            "rule": proposal.rule,
            "change": proposal.change,
            "evidence": proposal.evidence,
        },
    )
    return version


def approve(session: Session, version_id: int, by: str, now: datetime) -> ProposalDecision:
    """Make a waiting proposal the active playbook. One proposed against a playbook that is no
    longer active is set aside instead (it would undo what was approved since)."""
    target = _load(session, version_id)
    if target.status != "proposed":
        return ProposalDecision(False, target.version, target.status, _already(session, target))
    current = ensure_active(session, now)
    if target.parent_id != current.id:
        parent = session.get(PlaybookVersion, target.parent_id) if target.parent_id else None
        _retire(session, target, by, now, "playbook.proposal_outdated")
        return ProposalDecision(
            True,
            target.version,
            "retired",
            f"version {target.version} was proposed as a change to version "
            f"{parent.version if parent else '?'}, but version {current.version} is active now; "
            "it was set aside, and the next weekly look back proposes it again if the evidence "
            "still holds",
        )
    previous = current.version
    activate(session, target.version, by, now)
    return ProposalDecision(
        True,
        target.version,
        "active",
        f"playbook version {target.version} is active; `arbot playbook rollback` goes back to "
        f"version {previous}",
    )


def reject(session: Session, version_id: int, by: str, now: datetime) -> ProposalDecision:
    """A person says no: the proposal is retired, and not proposed again within the window."""
    target = _load(session, version_id)
    if not _retire(session, target, by, now, "playbook.rejected"):
        session.refresh(target)
        return ProposalDecision(False, target.version, target.status, _already(session, target))
    return ProposalDecision(
        True, target.version, "retired", f"playbook version {target.version} was rejected"
    )


def _retire(session: Session, target: PlaybookVersion, by: str, now: datetime, kind: str) -> bool:
    result = session.execute(
        update(PlaybookVersion)
        .where(PlaybookVersion.id == target.id, PlaybookVersion.status == "proposed")
        .values(status="retired")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    change = _change_of(session, target.version)
    audit.record(
        session, now, kind, actor=by, payload={"version": target.version, "change": change}
    )
    session.expire_all()
    return True


def id_of_version(session: Session, number: int) -> int:
    """The row id of playbook version `number` (what `arbot playbook list` shows)."""
    found = session.scalar(select(PlaybookVersion.id).where(PlaybookVersion.version == number))
    if found is None:
        raise UserError(f"there is no playbook version {number}; `arbot playbook list` shows them")
    return found


def _load(session: Session, version_id: int) -> PlaybookVersion:
    version = session.get(PlaybookVersion, version_id)
    if version is None:
        raise UserError(f"there is no playbook version with id {version_id}")
    return version


def _decision_event(session: Session, version: int) -> Event | None:
    kinds = ("playbook.rejected", "playbook.proposal_outdated", "playbook.activated")
    for event in session.scalars(
        select(Event).where(Event.kind.in_(kinds)).order_by(Event.id.desc())
    ):
        if event.payload.get("version") == version:
            return event
    return None


def _already(session: Session, version: PlaybookVersion) -> str:
    event = _decision_event(session, version.version)
    by = f" by {event.actor}" if event else ""
    if version.status == "active":
        return f"playbook version {version.version} is already active (approved{by})"
    if event is not None and event.kind == "playbook.rejected":
        return f"playbook version {version.version} was already rejected{by}"
    return f"playbook version {version.version} is no longer waiting ({version.status})"


def _change_of(session: Session, version: int) -> str | None:
    for event in session.scalars(select(Event).where(Event.kind == "playbook.evidence")):
        if event.payload.get("version") == version:
            return str(event.payload.get("change"))
    return None


def _changes_in_play(session: Session, now: datetime, weeks: int) -> tuple[set[str], set[str]]:
    """Changes with a proposal still waiting, and changes a person rejected within the window."""
    status = dict(session.execute(select(PlaybookVersion.version, PlaybookVersion.status)).all())
    waiting, refused = set(), set()
    for event in session.scalars(
        select(Event).where(Event.kind.in_(("playbook.evidence", "playbook.rejected")))
    ):
        change = event.payload.get("change")
        version = int(event.payload.get("version") or 0)
        if event.kind == "playbook.evidence" and status.get(version) == "proposed":
            waiting.add(str(change))
        elif event.kind == "playbook.rejected" and event.at >= now - timedelta(weeks=weeks):
            refused.add(str(change))
    return waiting, refused


# --- showing a proposal -----------------------------------------------------------------------


def view_of(session: Session, version_id: int) -> ProposalView:
    """What the Slack card shows for a stored version."""
    version = _load(session, version_id)
    parent = session.get(PlaybookVersion, version.parent_id) if version.parent_id else None
    diff = version_diff(parent.content, version.content) if parent else "(no earlier version)"
    event = None if version.status == "proposed" else _decision_event(session, version.version)
    outcome = {
        "playbook.activated": "approved",
        "playbook.rejected": "rejected",
        "playbook.proposal_outdated": "set aside: another version became active first",
    }
    return ProposalView(
        version_id=version.id,
        version=version.version,
        rationale=version.rationale or "",
        diff=diff,
        status=version.status,
        decided=outcome.get(event.kind) if event else None,
        decided_by=event.actor if event else None,
    )
