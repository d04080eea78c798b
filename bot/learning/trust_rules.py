"""When a step earns trust, and when it loses it. The thresholds are pinned:

- earned: the last TRUST_AFTER (30) reminders of a step of one ladder that a person decided (since
  the step last lost trust, if it did) were all approved as written: none edited, none skipped,
  and none drew a dispute or an opt-out reply (a complaint counts as an opt-out). Then a playbook
  version flipping the step's `auto_approve` on is proposed, for a person to approve in Slack.
- lost, at once (`bot.learning.trust.withdraw`): an approver edits a draft of a trusted step, or
  LOST_AT (2) of the last LOST_WINDOW (30) reminders it sent since it earned trust drew a dispute
  or an opt-out reply (a rate of at least 1 in 15).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core.labels import step_label
from bot.core.models import Customer, EditExample, InboundMessage, Reminder
from bot.core.vocabulary import AUTO_APPROVER, TRUSTED_APPROVER, ReminderAction
from bot.learning.edit import set_auto_approve
from bot.learning.proposal import Proposal, ladder_words
from bot.learning.trust import (
    TRUST_RULE,
    Place,
    Withdrawal,
    change_of,
    ladder_of,
    last_withdrawn,
    trusted_steps,
    withdraw,
)
from bot.learning.versions import active_version, bundle_of
from playbooks.loader import Bundle
from playbooks.model import Ladder, Playbook

TRUST_AFTER = 30  # the last N reminders a person decided, all approved as written
LOST_WINDOW = 30  # a trusted step's last N reminders sent ...
LOST_AT = 2  # ... of which this many drew a dispute or an opt-out reply
BAD_REPLIES = ("dispute", "opt_out")
NOT_A_PERSON = (AUTO_APPROVER, TRUSTED_APPROVER, "system")


def trust_proposals(session: Session, current: Bundle) -> list[Proposal]:
    """A proposal for each remind step whose last TRUST_AFTER decided reminders were clean."""
    playbook = current.playbook
    candidates = {
        (ladder, s.key): (place, s)
        for ladder, ladder_steps in _ladders(playbook)
        for place, s in enumerate(ladder_steps, start=1)
        if s.action == "remind" and not s.auto_approve
    }
    if not candidates:
        return []
    keys = sorted({key for _, key in candidates})
    # Newest decision first, read a part at a time, until every step has its last TRUST_AFTER.
    decided = session.execute(
        select(Reminder, Customer)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.action == ReminderAction.REMIND, Reminder.step_key.in_(keys))
        .where(
            or_(
                Reminder.state == "skipped",
                Reminder.approved_at.is_not(None) & Reminder.approved_by.not_in(NOT_A_PERSON),
            )
        )
        .order_by(
            func.coalesce(Reminder.approved_at, Reminder.updated_at).desc(), Reminder.id.desc()
        )
        .execution_options(yield_per=500)
    )
    by_place: dict[Place, list[Reminder]] = defaultdict(list)
    full = 0
    try:
        for reminder, customer in decided:
            place = (ladder_of(playbook, customer), reminder.step_key)
            if place in candidates and len(by_place[place]) < TRUST_AFTER:
                by_place[place].append(reminder)
                full += len(by_place[place]) == TRUST_AFTER
                if full == len(candidates):
                    break
    finally:
        decided.close()
    proposals = []
    for place, reminders in sorted(by_place.items()):
        lost = last_withdrawn(session, place)
        if lost is not None:
            reminders = [r for r in reminders if _decided_at(r) > lost]
        if len(reminders) < TRUST_AFTER or _blemished(session, reminders):
            continue
        position, step = candidates[place]
        ladder, key = place
        first, last = _decided_at(reminders[-1]), _decided_at(reminders[0])
        rationale = (
            f"The last {TRUST_AFTER} reminders of step {key} "
            f"({step_label(key, step.offset_days, position)}) for {ladder_words(ladder)}, "
            f"decided from {first:%Y-%m-%d} to {last:%Y-%m-%d}, were approved as written: none "
            "edited or "
            "skipped, and none drew a dispute or an opt-out reply. Proposed: approve this "
            "step's reminders automatically. Every other check still holds (the undo window, "
            "the recheck at send, the send window, opt-outs, disputes, frequency caps); an "
            f"approver's edit of one of its drafts, or {LOST_AT} disputes or opt-outs in its "
            f"last {LOST_WINDOW} reminders, takes the trust back at once."
        )
        proposals.append(
            Proposal(
                rule=TRUST_RULE,
                change=change_of(ladder, key),
                ladder=ladder,
                step=key,
                rationale=rationale,
                playbook_yaml=set_auto_approve(current.source, ladder, key, True),
                templates=dict(current.templates),
                evidence={"clean": TRUST_AFTER, "from": first.isoformat(), "to": last.isoformat()},
            )
        )
    return proposals


def _ladders(playbook: Playbook) -> list[tuple[str, Ladder]]:
    found: list[tuple[str, Ladder]] = list(playbook.tiers.items())
    for segment in playbook.segments:
        found += [(f"{segment.name}/{tier}", steps) for tier, steps in segment.tiers.items()]
    return found


def _decided_at(reminder: Reminder) -> datetime:
    return reminder.approved_at or reminder.updated_at


def _blemished(session: Session, reminders: list[Reminder]) -> bool:
    """Whether any of these was skipped, edited, or drew a dispute or an opt-out reply."""
    if any(r.state == "skipped" for r in reminders):
        return True
    ids = [r.id for r in reminders]
    edited = session.scalar(
        select(func.count()).select_from(EditExample).where(EditExample.reminder_id.in_(ids))
    )
    return bool(edited) or _bad_replies(session, ids) > 0


def _bad_replies(session: Session, ids: list[int]) -> int:
    """How many of these reminders drew a dispute or an opt-out reply."""
    return len(
        set(
            session.scalars(
                select(InboundMessage.reminder_id).where(
                    InboundMessage.reminder_id.in_(ids), InboundMessage.label.in_(BAD_REPLIES)
                )
            )
        )
    )


def review_trust(session: Session, now: datetime) -> list[Withdrawal]:
    """Take trust back at once from each trusted step an approver edited a draft of, or whose
    last LOST_WINDOW reminders sent since it earned trust drew LOST_AT disputes or opt-outs.
    Runs before each plan and after each edit."""
    trusted = trusted_steps(session)
    if not trusted:
        return []
    version = active_version(session)
    assert version is not None
    playbook = bundle_of(version).playbook
    withdrawals = []
    for place, since in sorted(trusted.items()):
        why = _why_lost(session, playbook, place, since)
        if why is not None:
            withdrawals.append(withdraw(session, place, why, now, since))
            version = active_version(session)
            assert version is not None
            playbook = bundle_of(version).playbook
    return withdrawals


def _why_lost(session: Session, playbook: Playbook, place: Place, since: datetime) -> str | None:
    ladder, key = place
    edits = session.execute(
        select(EditExample.editor, Customer)
        .join(Reminder, Reminder.id == EditExample.reminder_id)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.step_key == key, EditExample.created_at >= since)
        .order_by(EditExample.id)
    ).all()
    for editor, customer in edits:
        if ladder_of(playbook, customer) == ladder:
            return f"an approver ({editor}) edited one of its drafts"
    sent = session.execute(
        select(Reminder.id, Customer)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(
            Reminder.step_key == key,
            Reminder.approved_by == TRUSTED_APPROVER,
            Reminder.sent_at >= since,
        )
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
    ).all()
    ids = [rid for rid, customer in sent if ladder_of(playbook, customer) == ladder][:LOST_WINDOW]
    bad = _bad_replies(session, ids) if ids else 0
    if bad >= LOST_AT:
        return f"{bad} of its last {len(ids)} reminders drew a dispute or an opt-out reply"
    return None
