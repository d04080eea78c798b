"""The timing rules' proposals: a step moved to the day its reminders were clearly more often
paid, dropped when it did no better than going without it, or a reminder added halfway through a
long gap after which payments waited for the next reminder, each as a whole playbook version
with its evidence in words a person reads. The evidence and the pinned thresholds are in
`bot.learning.timing`; `bot.learning.rules` checks these proposals with its others."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from bot.core.labels import step_label, when
from bot.learning import timing
from bot.learning.edit import add_step, drop_step, edit_step
from bot.learning.proposal import Proposal, ladder_words
from playbooks.loader import Bundle


def timing_proposals(
    session: Session, current: Bundle, today: date, since: datetime, timezone: str
) -> list[Proposal]:
    touches, trails = timing.evidence(session, current.playbook, today, since, timezone)
    weeks = (today - since.date()).days // 7
    found = [_move(current, move, weeks) for move in timing.moves(current.playbook, touches)]
    found += [_drop(current, drop, weeks) for drop in timing.drops(current.playbook, trails, today)]
    for add in timing.additions(current.playbook, trails, today):
        proposal = _add(current, add, weeks)
        if proposal is not None:
            found.append(proposal)
    return found


def _move(current: Bundle, move: timing.Move, weeks: int) -> Proposal:
    step, now_day, new_day = move.step, move.step.offset_days, move.to_day
    label = step_label(step.key, now_day, move.place)
    noun = {frozenset({"email"}): "emails", frozenset({"sms"}): "text messages"}.get(
        move.channels, "reminders"
    )
    rationale = (
        f"{label[:1].upper()}{label[1:]}, for {ladder_words(move.ladder)}, "
        f"over the last {weeks} weeks: "
        f"{noun} sent {when(now_day)} were paid in full within {timing.PAID_WITHIN_DAYS} days "
        f"{move.current.words()}; sent {when(new_day)} (later or earlier than planned: holds, "
        f"the send window, waiting for approval), {move.proposed.words()}. That is "
        f"{(move.proposed.rate - move.current.rate) * 100:.0f} points more (two-proportion test "
        f"p = {move.p_value:.3f}; the rule asks at least {timing.MOVE_MIN_GAIN * 100:.0f} points, "
        f"p below {timing.MOVE_ALPHA} and {timing.MOVE_MIN_TOUCHES} reminders on each side). "
        f"Proposed: send this step {when(new_day)} instead of {when(now_day)}."
    )
    return Proposal(
        rule="timing",
        change=f"timing:{move.ladder}:{step.key}:{new_day}",
        ladder=move.ladder,
        step=step.key,
        rationale=rationale,
        playbook_yaml=edit_step(current.source, move.ladder, step.key, offset_days=new_day),
        templates=dict(current.templates),
        evidence={
            "from_day": now_day,
            "to_day": new_day,
            "current": [move.current.paid, move.current.of],
            "proposed": [move.proposed.paid, move.proposed.of],
            "p_value": round(move.p_value, 4),
            "days": timing.PAID_WITHIN_DAYS,
        },
    )


def _drop(current: Bundle, drop: timing.Drop, weeks: int) -> Proposal:
    step = drop.step
    label = step_label(step.key, step.offset_days, drop.place)
    before = step_label(drop.before.key, drop.before.offset_days, drop.place - 1)
    rationale = (
        f"{label[:1].upper()}{label[1:]}, for {ladder_words(drop.ladder)}, "
        f"over the last {weeks} weeks: "
        f"invoices it reminded of were paid in full within {timing.PAID_WITHIN_DAYS} days "
        f"{drop.with_step.words()}; invoices that had the one before ({before}) but not this "
        f"one and were still open on its day, {drop.without.words()}. With 95% confidence it "
        f"brings fewer than {timing.DROP_MARGIN * 100:.0f} more in 100 invoices paid (at most "
        f"{max(drop.gain_high, 0) * 100:.0f}; the rule asks at least "
        f"{timing.DROP_MIN_INVOICES} invoices on each side). Those without it may have been held "
        "back for a reason (a promise, a cap on contacts): read the evidence with that in mind. "
        "Proposed: drop this step."
    )
    return Proposal(
        rule="drop_step",
        change=f"drop_step:{drop.ladder}:{step.key}",
        ladder=drop.ladder,
        step=step.key,
        rationale=rationale,
        playbook_yaml=drop_step(current.source, drop.ladder, step.key),
        templates=dict(current.templates),
        evidence={
            "with": [drop.with_step.paid, drop.with_step.of],
            "without": [drop.without.paid, drop.without.of],
            "gain_high": round(drop.gain_high, 4),
            "days": timing.PAID_WITHIN_DAYS,
        },
    )


def _add(current: Bundle, add: timing.Add, weeks: int) -> Proposal | None:
    key = f"plus{add.day}" if add.day >= 0 else f"minus{-add.day}"
    if any(name == add.ladder and s.key == key for name, s in current.playbook.all_steps()):
        return None
    before = step_label(add.before.key, add.before.offset_days, add.place)
    after = step_label(add.after.key, add.after.offset_days, add.place + 1)
    rationale = (
        f"For {ladder_words(add.ladder)}, over the last {weeks} weeks: of the invoices still open "
        f"a week after the {before}, {add.gap.words()} were paid in the {add.gap_days} days "
        f"before the {after} (about {add.gap_week_rate:.0%} a week); of those the {after} "
        f"reminded of, {add.next_week.words()} were paid within {timing.PAID_WITHIN_DAYS} days "
        f"of it. Payments wait for the next reminder (the rule asks a week after it at least "
        f"{timing.ADD_RATIO:g} times a week of the gap, {timing.ADD_MIN_INVOICES} invoices on "
        f"each side, {timing.ADD_MIN_GAP_DAYS} days or more between the two). Proposed: a "
        f"reminder {when(add.day)}, like the {before} (same channels, tone and template)."
    )
    step = {
        "key": key,
        "offset_days": add.day,
        "channels": list(add.before.channels),
        "tone": add.before.tone,
        "template": add.before.template,
    }
    return Proposal(
        rule="add_step",
        change=f"add_step:{add.ladder}:{key}",
        ladder=add.ladder,
        step=key,
        rationale=rationale,
        playbook_yaml=add_step(current.source, add.ladder, add.before.key, step),
        templates=dict(current.templates),
        evidence={
            "gap": [add.gap.paid, add.gap.of],
            "gap_days": add.gap_days,
            "next_week": [add.next_week.paid, add.next_week.of],
            "day": add.day,
            "days": timing.PAID_WITHIN_DAYS,
        },
    )
