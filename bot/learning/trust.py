"""Steps that earned trust: which are trusted, since when, and taking the trust back at once.

A step earns trust through a playbook version a person approved in Slack that flips its
`auto_approve` on (the proposal is made by `bot.learning.trust_rules`): the planner then stores its
reminders `approved` by TRUSTED_APPROVER, still behind every check a person's approval is (the undo
window, the recheck at send, the send window, opt-outs, disputes, frequency caps). Trust is taken
back at once, never only proposed: a new playbook version without `auto_approve` on that step is
made active by TRUST_KEEPER, and the step's reminders approved automatically but not yet claimed
for sending go back to `planned`, waiting for a person's click.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.labels import step_label
from bot.core.models import Customer, Event, PlaybookVersion, Reminder, SlackRetry
from bot.core.slack_retries import REDRAW
from bot.core.vocabulary import TRUSTED_APPROVER, ReminderAction
from bot.learning.edit import set_auto_approve
from bot.learning.proposal import ladder_words
from bot.learning.versions import activate, active_version, bundle_of, ensure_active, propose
from bot.reminders import state
from bot.reminders.state import APPROVED, PLANNED
from playbooks.model import Playbook

TRUST_RULE = "trust"  # the rule name of a trust proposal (its playbook.evidence event)
TRUST_KEEPER = "arbot (trust withdrawn)"  # who activates the version that takes trust back
WITHDRAWN = "playbook.trust_withdrawn"

Place = tuple[str, str]  # (ladder, step key): "standard", "plus7"; "patients/standard", "plus10"


def change_of(ladder: str, step_key: str) -> str:
    """The proposal's change key: one waiting proposal per step, none within weeks of a no."""
    return f"trust:{ladder}:{step_key}"


@dataclass(frozen=True)
class Withdrawal:
    ladder: str
    step: str
    why: str
    version: int  # the playbook version that took it back
    back_to_planned: list[int]  # reminders approved automatically, waiting for a click again


def trusted_steps(session: Session) -> dict[Place, datetime]:
    """The active playbook's steps that earned trust, and since when (the approval of the
    version that flipped them on). A step the playbook file itself marks auto_approve, never
    proposed as trust, is not among them: its reminders are approved by the playbook."""
    version = active_version(session)
    if version is None:
        return {}
    playbook = bundle_of(version).playbook
    automatic = {(ladder, s.key) for ladder, s in playbook.all_steps() if s.auto_approve}
    if not automatic:
        return {}
    granted: dict[int, Place] = {}
    activated: dict[int, datetime] = {}
    withdrawn: dict[Place, datetime] = {}
    for event in session.scalars(
        select(Event)
        # playbook events name no customer: the (customer_id, at) index finds them
        .where(Event.customer_id.is_(None))
        .where(Event.kind.in_(("playbook.evidence", "playbook.activated", WITHDRAWN)))
        .order_by(Event.id)
    ):
        payload = event.payload or {}
        if event.kind == "playbook.evidence" and payload.get("rule") == TRUST_RULE:
            place = _place(str(payload.get("change")))
            if place is not None:
                granted[int(payload.get("version") or 0)] = place
        elif event.kind == "playbook.activated":
            activated[int(payload.get("version") or 0)] = event.at
        elif event.kind == WITHDRAWN:
            withdrawn[(str(payload.get("ladder")), str(payload.get("step")))] = event.at
    since: dict[Place, datetime] = {}
    for number, place in granted.items():
        at = activated.get(number)
        if at is None or place not in automatic or withdrawn.get(place, at) > at:
            continue
        since[place] = max(since.get(place, at), at)
    return since


def _place(change: str) -> Place | None:
    rule, _, rest = change.partition(":")
    ladder, _, key = rest.rpartition(":")
    return (ladder, key) if rule == TRUST_RULE and ladder and key else None


def last_withdrawn(session: Session, place: Place) -> datetime | None:
    """When trust was last taken back from this step, if ever: its earning starts again then."""
    found = None
    for event in session.scalars(
        select(Event).where(Event.customer_id.is_(None), Event.kind == WITHDRAWN)
    ):
        payload = event.payload or {}
        if (payload.get("ladder"), payload.get("step")) == place:
            found = event.at if found is None else max(found, event.at)
    return found


def ladder_of(playbook: Playbook, customer: Customer) -> str:
    return playbook.ladder_for(customer.tier, customer.tags or [])[0]


def step_words(playbook: Playbook, ladder: str, key: str) -> str:
    """The step as people read it: "gentle reminder, 3 days late", "third reminder, 7 days late"."""
    steps = [s for name, s in playbook.all_steps() if name == ladder]
    for position, step in enumerate(steps, start=1):
        if step.key == key:
            return step_label(key, step.offset_days, position)
    return step_label(key)


def withdraw(
    session: Session, place: Place, why: str, now: datetime, since: datetime | None = None
) -> Withdrawal:
    """Take a step's trust back at once: a playbook version without its auto_approve becomes
    active, and its reminders approved automatically and not yet claimed go back to planned.
    `since`: when the step had earned trust (told in Slack, bot/learning/trust_notices.py)."""
    ladder, key = place
    current = ensure_active(session, now)
    label = step_words(bundle_of(current).playbook, ladder, key)
    text = set_auto_approve(bundle_of(current).source, ladder, key, False)
    rationale = (
        f"Trust taken back from step {key} of {ladder}: {why}. Its reminders wait for a "
        "person's approval again; they earn trust anew from here."
    )
    with tempfile.TemporaryDirectory(prefix="arbot-trust-") as folder:
        path = Path(folder) / "playbook.yml"
        path.write_text(text, encoding="utf-8")
        for name, source in bundle_of(current).templates.items():
            file = Path(folder) / "templates" / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(source, encoding="utf-8")
        version = propose(session, path, TRUST_KEEPER, rationale, now)
    number = version.version
    activate(session, number, TRUST_KEEPER, now)
    playbook = bundle_of(session.get(PlaybookVersion, version.id) or version).playbook
    waiting = session.execute(
        select(Reminder.id, Customer)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(
            Reminder.state == APPROVED,
            Reminder.approved_by == TRUSTED_APPROVER,
            Reminder.step_key == key,
        )
    ).all()
    ids = [rid for rid, customer in waiting if ladder_of(playbook, customer) == ladder]
    moved = state.transition(
        session,
        ids,
        from_states=(APPROVED,),
        to=PLANNED,
        now=now,
        actor=TRUST_KEEPER,
        events=[("reminder.approval_withdrawn", {"approved_by": TRUSTED_APPROVER, "why": why})],
        where=[Reminder.action == ReminderAction.REMIND],
        approved_by=None,
        approved_at=None,
    )
    _redraw_later(session, moved)
    audit.record(
        session,
        now,
        WITHDRAWN,
        actor=TRUST_KEEPER,
        payload={
            "ladder": ladder,
            "step": key,
            "change": change_of(ladder, key),
            "why": why,
            "version": number,
            "back_to_planned": moved,
            "label": label,
            "since": since.isoformat() if since is not None else None,
        },
    )
    return Withdrawal(ladder, key, why, number, moved)


def _redraw_later(session: Session, reminder_ids: list[int]) -> None:
    """Owe Slack a redraw of the messages holding these cards (now waiting for a click again):
    the sweep draws them as they are then, whichever entry point took the trust back."""
    if not reminder_ids:
        return
    posted = session.execute(
        select(Reminder.slack_channel, Reminder.slack_ts)
        .where(Reminder.id.in_(reminder_ids), Reminder.slack_ts.is_not(None))
        .distinct()
    ).all()
    for channel, ts in posted:
        if channel is None or ts is None:
            continue
        owed = session.scalar(
            select(SlackRetry.id).where(
                SlackRetry.kind == REDRAW, SlackRetry.channel == channel, SlackRetry.ts == ts
            )
        )
        if owed is not None:
            continue
        try:
            with session.begin_nested():
                session.add(
                    SlackRetry(
                        kind=REDRAW,
                        channel=channel,
                        ts=ts,
                        attempts=0,
                        next_try_at=None,
                        last_error="trust taken back: its cards wait for a click again",
                    )
                )
        except IntegrityError:  # owed meanwhile by another transaction: drawn all the same
            continue


def recent_withdrawals(session: Session, after: datetime) -> list[tuple[datetime, str, str, str]]:
    """Trust taken back since `after`: (when, ladder, step, why), oldest first."""
    return [
        (e.at, str(e.payload.get("ladder")), str(e.payload.get("step")), str(e.payload.get("why")))
        for e in session.scalars(
            select(Event)
            .where(Event.customer_id.is_(None), Event.kind == WITHDRAWN, Event.at >= after)
            .order_by(Event.id)
        )
    ]


def since_for(session: Session, pairs: list[tuple[Reminder, Customer]]) -> dict[int, datetime]:
    """Since when the step of each reminder approved by TRUSTED_APPROVER has been trusted (its
    customer's ladder in the active playbook), by reminder id; absent when no longer trusted."""
    pairs = [(r, c) for r, c in pairs if r.approved_by == TRUSTED_APPROVER]
    trusted = trusted_steps(session) if pairs else {}
    if not trusted:
        return {}
    version = active_version(session)
    assert version is not None
    playbook = bundle_of(version).playbook
    found = {}
    for reminder, customer in pairs:
        since = trusted.get((ladder_of(playbook, customer), reminder.step_key))
        if since is not None:
            found[reminder.id] = since
    return found


def header_lines(session: Session, after: datetime) -> tuple[list[str], list[str]]:
    """What the plan header says of trust: the steps approved automatically and since when, and
    the trust taken back since `after`, with why."""
    trusted = [
        f"step {key} for {ladder_words(ladder)}, since {since:%-d %b %Y}"
        for (ladder, key), since in sorted(trusted_steps(session).items())
    ]
    lost = [
        f"step {key} for {ladder_words(ladder)}, on {at:%-d %b %Y}: {why}; its reminders wait "
        "for a person's approval again"
        for at, ladder, key, why in recent_withdrawals(session, after)
    ]
    return trusted, lost
