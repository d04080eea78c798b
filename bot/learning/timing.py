"""The evidence for changing when a step is sent, or whether it is sent at all, and the tests it
must pass. Nothing is stored or proposed here: `bot.learning.rules` turns what passes into
playbook versions.

An outcome is "paid within 7 days": every invoice a reminder covered was fully paid (the day its
balance reached zero, as `bot.learning.metrics` reconstructs it) within `PAID_WITHIN_DAYS` days
after the reminder went out. Days are counted from the earliest due date the reminder covered, on
the day it was actually sent, so a reminder planned for +7 that went out on +10 (held, outside the
send window, waiting for approval) counts at +10: that natural spread is the evidence.

Moving a step (pinned thresholds):
- its reminders sent on the step's own day, and those of the same step sent on another day
  between the ladder's neighbouring steps, at least `MOVE_MIN_TOUCHES` of each;
- paid within 7 days at least `MOVE_MIN_GAIN` (10 points) more often on the other day;
- and a two-sided two-proportion z-test (pooled) gives p below `MOVE_ALPHA` (0.05).
The best such day is proposed (the highest share paid; the nearest on a tie). Only the step's own
reminders count: a neighbouring step's day can never be a candidate, since a ladder's days must
increase from step to step.

Dropping a step (pinned thresholds): compare the invoices that got the step with those that got
the reminder before it, were still open on the step's day and did not get the step (held back,
capped, waiting): paid within 7 days of the step (of its day, for those without it). At least
`DROP_MIN_INVOICES` on each side, the step's share no higher than without it, and the upper end
of the 95% interval (Wald) of what the step adds below `DROP_MARGIN` (10 points): with that
confidence it brings fewer than 10 more in 100 invoices paid. The first reminder of a ladder has
nothing before it to compare with and is never dropped; escalations are never dropped.

Adding a step (kept simple, pinned thresholds): between two reminder steps of a ladder that follow
each other at least `ADD_MIN_GAP_DAYS` (14) days apart, when the invoices that had the first and
were still open a week after it were paid, per week of the quiet rest of the gap, less than half
as often (`ADD_RATIO`) as those reminded by the second were paid in the week after it, with at
least `ADD_MIN_INVOICES` (40) on each side: payments wait for the next reminder, so a reminder
halfway (the first one's channels, tone and template) is proposed. A week's rate is worked out
from the gap's as 1 - (1 - share) ^ (7 / days), as if payments were spread evenly over it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import erfc, sqrt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Customer, Invoice, Reminder, ReminderInvoice
from bot.learning.metrics import load_histories, local_day, start_of
from playbooks.model import Ladder, Playbook, Step

PAID_WITHIN_DAYS = 7
MOVE_MIN_TOUCHES = 40  # reminders on each side: at the step's day, and at the proposed day
MOVE_MIN_GAIN = 0.10  # paid within 7 days at least 10 points more often on the proposed day
MOVE_ALPHA = 0.05  # two-sided two-proportion z-test
DROP_MIN_INVOICES = 40  # invoices on each side: with the step, and without it
DROP_MARGIN = 0.10  # the step adds fewer than 10 points, at 95% confidence
ADD_MIN_GAP_DAYS = 14  # between two reminder steps that follow each other
ADD_MIN_INVOICES = 40  # on each side: open in the gap, and reminded by the next step
ADD_RATIO = 2.0  # paid in the week after the next reminder at least twice a week of the gap
Z_95 = 1.959964  # two-sided 95%


@dataclass(frozen=True, slots=True)
class Share:
    """How many of `of` were paid within the days allowed."""

    paid: int
    of: int

    @property
    def rate(self) -> float:
        return self.paid / self.of if self.of else 0.0

    def words(self) -> str:
        return f"{self.rate:.0%} ({self.paid} of {self.of})"


@dataclass(frozen=True, slots=True)
class Touch:
    """A reminder that went out, and whether what it covered was paid within the days allowed."""

    ladder: str
    step_key: str
    channel: str
    day: int  # the day it went out, counted from the earliest due date it covered
    sent_on: date
    paid: bool


@dataclass(frozen=True, slots=True)
class Trail:
    """One invoice's reminders and the day it was paid, for the dropping rule."""

    ladder: str
    due_date: date
    paid_on: date | None
    sent: dict[str, date]  # step key -> the first day a reminder of that step covered it


@dataclass(frozen=True, slots=True)
class Move:
    ladder: str
    step: Step
    place: int  # among the ladder's reminders, from 1
    to_day: int
    current: Share
    proposed: Share
    p_value: float
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class Drop:
    ladder: str
    step: Step
    place: int
    before: Step  # the reminder before it
    with_step: Share
    without: Share
    gain_high: float  # upper end of the 95% interval of what the step adds


@dataclass(frozen=True, slots=True)
class Add:
    ladder: str
    before: Step  # the reminder the new one follows, and whose channels, tone and template it uses
    after: Step
    place: int  # of `before` among the ladder's reminders
    day: int
    gap: Share  # open a week after `before`: paid in the rest of the gap
    gap_days: int
    next_week: Share  # reminded by `after`: paid within 7 days of it

    @property
    def gap_week_rate(self) -> float:
        return 1 - float((1 - self.gap.rate) ** (7 / self.gap_days))


# --- the tests -----------------------------------------------------------------------------------


def two_proportion_p(a: Share, b: Share) -> float:
    """Two-sided p-value of a pooled two-proportion z-test (1.0 when it cannot be computed)."""
    pooled = (a.paid + b.paid) / (a.of + b.of)
    spread = sqrt(pooled * (1 - pooled) * (1 / a.of + 1 / b.of))
    if spread == 0:
        return 1.0
    z = (a.rate - b.rate) / spread
    return erfc(abs(z) / sqrt(2))


def gain_high(with_step: Share, without: Share) -> float:
    """Upper end of the 95% Wald interval of with_step.rate - without.rate."""
    spread = sqrt(
        with_step.rate * (1 - with_step.rate) / with_step.of
        + without.rate * (1 - without.rate) / without.of
    )
    return with_step.rate - without.rate + Z_95 * spread


def moves(playbook: Playbook, touches: Iterable[Touch]) -> list[Move]:
    """Each step whose reminders did clearly better on another day, with the best such day."""
    groups: dict[tuple[str, str], list[Touch]] = defaultdict(list)
    for touch in touches:
        groups[(touch.ladder, touch.step_key)].append(touch)
    found = []
    for (ladder_name, key), members in sorted(groups.items()):
        placed = _placed(playbook, ladder_name, key)
        if placed is None:
            continue
        ladder, index, place = placed
        step = ladder[index]
        low = ladder[index - 1].offset_days if index > 0 else -61
        high = ladder[index + 1].offset_days if index + 1 < len(ladder) else 366
        by_day: dict[int, list[Touch]] = defaultdict(list)
        for touch in members:
            by_day[touch.day].append(touch)
        current = _share(by_day.get(step.offset_days, []))
        if current.of < MOVE_MIN_TOUCHES:
            continue
        best: Move | None = None
        for day, at_day in sorted(by_day.items(), key=lambda d: abs(d[0] - step.offset_days)):
            other = _share(at_day)
            if day == step.offset_days or not low < day < high or other.of < MOVE_MIN_TOUCHES:
                continue
            p_value = two_proportion_p(other, current)
            if other.rate - current.rate < MOVE_MIN_GAIN or p_value >= MOVE_ALPHA:
                continue
            if best is None or other.rate > best.proposed.rate:
                channels = frozenset(t.channel for t in at_day + by_day[step.offset_days])
                best = Move(ladder_name, step, place, day, current, other, p_value, channels)
        if best is not None:
            found.append(best)
    return found


def drops(playbook: Playbook, trails: Iterable[Trail], today: date) -> list[Drop]:
    """Each reminder step that did no better than going without it, with enough invoices."""
    trails = list(trails)
    window = timedelta(days=PAID_WITHIN_DAYS)
    found = []
    for ladder_name, step in playbook.all_steps():
        placed = _placed(playbook, ladder_name, step.key)
        if placed is None or step.action != "remind":
            continue
        ladder, index, place = placed
        before = next((s for s in reversed(ladder[:index]) if s.action == "remind"), None)
        if before is None:
            continue
        with_paid = with_of = without_paid = without_of = 0
        for trail in trails:
            if trail.ladder != ladder_name:
                continue
            sent = trail.sent.get(step.key)
            if sent is not None and sent + window < today:
                with_of += 1
                with_paid += trail.paid_on is not None and sent <= trail.paid_on <= sent + window
                continue
            day = trail.due_date + timedelta(days=step.offset_days)
            still_open = trail.paid_on is None or trail.paid_on >= day
            if sent is None and before.key in trail.sent and still_open and day + window < today:
                without_of += 1
                without_paid += trail.paid_on is not None and trail.paid_on <= day + window
        with_step, without = Share(with_paid, with_of), Share(without_paid, without_of)
        if min(with_step.of, without.of) < DROP_MIN_INVOICES or with_step.rate > without.rate:
            continue
        high = gain_high(with_step, without)
        if high < DROP_MARGIN:
            found.append(Drop(ladder_name, step, place, before, with_step, without, high))
    return found


def additions(playbook: Playbook, trails: Iterable[Trail], today: date) -> list[Add]:
    """Each long gap between two reminders where payments waited for the second one."""
    trails = list(trails)
    window = timedelta(days=PAID_WITHIN_DAYS)
    found = []
    for ladder_name, step in playbook.all_steps():
        placed = _placed(playbook, ladder_name, step.key)
        if placed is None:
            continue
        ladder, index, place = placed
        after = ladder[index + 1] if index + 1 < len(ladder) else None
        if after is None or after.action != "remind":
            continue
        if after.offset_days - step.offset_days < ADD_MIN_GAP_DAYS:
            continue
        quiet_from = step.offset_days + PAID_WITHIN_DAYS
        gap_paid = gap_of = next_paid = next_of = 0
        for trail in trails:
            if trail.ladder != ladder_name or step.key not in trail.sent:
                continue
            start = trail.due_date + timedelta(days=quiet_from)
            end = trail.due_date + timedelta(days=after.offset_days)  # the gap ends the day before
            if (trail.paid_on is None or trail.paid_on >= start) and end + window < today:
                gap_of += 1
                gap_paid += trail.paid_on is not None and trail.paid_on < end
            sent = trail.sent.get(after.key)
            if sent is not None and sent + window < today:
                next_of += 1
                next_paid += trail.paid_on is not None and sent <= trail.paid_on <= sent + window
        add = Add(
            ladder=ladder_name,
            before=step,
            after=after,
            place=place,
            day=(step.offset_days + after.offset_days) // 2,
            gap=Share(gap_paid, gap_of),
            gap_days=after.offset_days - quiet_from,
            next_week=Share(next_paid, next_of),
        )
        if min(gap_of, next_of) < ADD_MIN_INVOICES or next_paid == 0:
            continue
        if add.next_week.rate >= ADD_RATIO * add.gap_week_rate:
            found.append(add)
    return found


def _share(touches: list[Touch]) -> Share:
    return Share(sum(1 for t in touches if t.paid), len(touches))


def _placed(playbook: Playbook, ladder_name: str, key: str) -> tuple[Ladder, int, int] | None:
    """The ladder, the step's index in it and its place among the reminders; None unless it is
    a reminder step of that ladder."""
    ladders: dict[str, Ladder] = {
        f"{segment.name}/{tier}": ladder
        for segment in playbook.segments
        for tier, ladder in segment.tiers.items()
    }
    ladders.update({str(tier): ladder for tier, ladder in playbook.tiers.items()})
    ladder = ladders.get(ladder_name)
    if ladder is None:
        return None
    place = 0
    for index, step in enumerate(ladder):
        place += step.action == "remind"
        if step.key == key:
            return (ladder, index, place) if step.action == "remind" else None
    return None


# --- the evidence --------------------------------------------------------------------------------


def evidence(
    session: Session, playbook: Playbook, today: date, since: datetime, timezone: str
) -> tuple[list[Touch], list[Trail]]:
    """The reminders sent from `since` until `PAID_WITHIN_DAYS` days before `today`, and the
    trail of each invoice they covered, each in the ladder its customer follows today. Days are
    the business's (`timezone`): the day a reminder went out, and the day an invoice was paid."""
    zone = ZoneInfo(timezone)
    until = start_of(today - timedelta(days=PAID_WITHIN_DAYS), zone)
    sent = (
        (Reminder.state == "sent")
        & (Reminder.action == "remind")
        & (Reminder.sent_at >= since)
        & (Reminder.sent_at < until)
    )
    rows = session.execute(
        select(
            Reminder.id,
            Reminder.step_key,
            Reminder.channel,
            Reminder.sent_at,
            ReminderInvoice.invoice_id,
            ReminderInvoice.step_key.label("invoice_step"),  # the invoice's own step
            ReminderInvoice.due_date,
            Customer.tier,
            Customer.tags,
        )
        .join(ReminderInvoice, ReminderInvoice.reminder_id == Reminder.id)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(sent)
        .order_by(Reminder.sent_at, Reminder.id)
    ).all()
    covered = select(ReminderInvoice.invoice_id).join(Reminder).where(sent)
    paid_on = {
        invoice_id: history.paid_on()
        for invoice_id, history in load_histories(
            session, Invoice.id.in_(covered), timezone
        ).items()
    }
    grouped: dict[int, list[tuple[int, date]]] = defaultdict(list)
    about: dict[int, tuple[str, str, str, date]] = {}
    trails: dict[int, Trail] = {}
    for row in rows:
        if row.invoice_id not in paid_on:  # void: owed by nobody
            continue
        ladder, _ = playbook.ladder_for(row.tier, list(row.tags or []))
        sent_on = local_day(row.sent_at, zone)
        grouped[row.id].append((row.invoice_id, row.due_date))
        about[row.id] = (ladder, row.step_key, row.channel or "email", sent_on)
        trail = trails.setdefault(
            row.invoice_id, Trail(ladder, row.due_date, paid_on[row.invoice_id], {})
        )
        trail.sent.setdefault(row.invoice_step, sent_on)
    touches = []
    window = timedelta(days=PAID_WITHIN_DAYS)
    for reminder_id, invoices in grouped.items():
        ladder, key, channel, sent_on = about[reminder_id]
        paid = all(
            (paid_day := paid_on[invoice_id]) is not None
            and sent_on <= paid_day <= sent_on + window
            for invoice_id, _ in invoices
        )
        day = (sent_on - min(due for _, due in invoices)).days
        touches.append(Touch(ladder, key, channel, day, sent_on, paid))
    return touches, list(trails.values())
