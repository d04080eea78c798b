"""What approvers do to a planned reminder: approve, edit, skip, approve a whole tier.

Each is one conditional UPDATE (`... WHERE state = 'planned'`) and an Event in the same
transaction: a double click, two approvers at once or a Slack retry changes nothing the second
time, and the second actor learns who acted first. Approve and Approve all first ask whether
the reminder is stale (bot/reminders/stale.py, with the rules the send claim uses): a stale one is
cancelled with its reason instead of approved.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.errors import UserError
from bot.core.models import Customer, EditExample, Event, Reminder
from bot.core.vocabulary import ReminderAction
from bot.reminders import state
from bot.reminders.stale import StaleRules, why_stale
from bot.reminders.state import APPROVED, PLANNED, SKIPPED
from playbooks.lint import lint_message
from playbooks.render import SMS_LIMIT, Rendered


@dataclass(frozen=True)
class Decision:
    changed: bool
    reminder_id: int
    state: str
    by: str | None  # who acted (first)
    at: datetime | None


def _load(session: Session, reminder_id: int) -> Reminder:
    reminder = session.get(Reminder, reminder_id)
    if reminder is None:
        raise UserError(f"there is no reminder {reminder_id}")
    return reminder


def _who_acted(session: Session, reminder: Reminder) -> tuple[str | None, datetime | None]:
    if reminder.approved_by:
        return reminder.approved_by, reminder.approved_at
    event = session.execute(
        select(Event.actor, Event.at)
        .where(Event.reminder_id == reminder.id)
        .where(Event.kind.in_(("reminder.skipped", "reminder.cancelled", "reminder.approved")))
        .order_by(Event.id.desc())
    ).first()
    return (event[0], event[1]) if event else (None, None)


def _outcome(session: Session, reminder_id: int, changed: bool) -> Decision:
    session.expire_all()
    reminder = _load(session, reminder_id)
    by, at = _who_acted(session, reminder)
    return Decision(changed, reminder_id, reminder.state, by, at)


def cancel_if_stale(
    session: Session, reminder_id: int, now: datetime, rules: StaleRules
) -> str | None:
    """Cancel a planned reminder whose reason to exist has gone (paid, disputed, resolved,
    paused, opted out, escalated since; see bot/reminders/stale.py), with the same rules the send
    claim uses. Returns why, or None when it may be approved."""
    reminder = _load(session, reminder_id)
    if reminder.state != PLANNED or reminder.action != ReminderAction.REMIND:
        return None
    reason = why_stale(session, reminder, now, rules)
    if reason is None:
        return None
    state.cancel(session, [reminder_id], from_states=(PLANNED,), reason=reason, now=now)
    return reason


def approve(
    session: Session, reminder_id: int, user: str, now: datetime, *, rules: StaleRules
) -> Decision:
    """Approve a planned reminder, unless it is stale: then it is cancelled instead."""
    if cancel_if_stale(session, reminder_id, now, rules):
        return _outcome(session, reminder_id, False)
    approved = state.transition(
        session,
        [reminder_id],
        from_states=(PLANNED,),
        to=APPROVED,
        now=now,
        actor=user,
        events=[("reminder.approved", {})],
        where=[Reminder.action == ReminderAction.REMIND],
        approved_by=user,
        approved_at=now,
    )
    return _outcome(session, reminder_id, bool(approved))


def skip(session: Session, reminder_id: int, user: str, reason: str, now: datetime) -> Decision:
    """The step counts as done for its invoices (their ReminderInvoice rows stay)."""
    skipped = state.transition(
        session,
        [reminder_id],
        from_states=(PLANNED,),
        to=SKIPPED,
        now=now,
        actor=user,
        events=[("reminder.skipped", {"reason": reason.strip()})],
    )
    return _outcome(session, reminder_id, bool(skipped))


SUBJECT_LIMIT = 150  # characters: an edited subject, as the Edit form holds it
BODY_LIMITS = {"email": 3000, "sms": SMS_LIMIT}  # an edited message, as the Edit form holds it


def body_limit(channel: str | None) -> int:
    """The most characters an edited message may have on this channel."""
    return BODY_LIMITS.get(channel or "email", BODY_LIMITS["email"])


def edit_problems(channel: str | None, subject: str | None, body: str) -> dict[str, str]:
    """What is wrong with an edited message, by field (`subject`, `body`): longer than the Edit
    form holds (a client may send more than the form lets a person type), or what the linter
    refuses; empty = fine."""
    problems: dict[str, str] = {}
    if channel != "sms" and len(subject or "") > SUBJECT_LIMIT:
        problems["subject"] = (
            f"{len(subject or ''):,} characters: shorten it to at most {SUBJECT_LIMIT}"
        )
    if len(body) > body_limit(channel):
        problems["body"] = (
            f"{len(body):,} characters: shorten it to at most {body_limit(channel):,}"
        )
    if problems:  # the linter reads the whole text: not one that long
        return problems
    if channel == "sms":
        message = Rendered(subject="-", text="unsubscribe", html="unsubscribe", sms=body)
    else:
        message = Rendered(subject=subject or "", text=body, html=body, sms="Reply STOP")
    for problem in lint_message(message):
        part, _, what = problem.partition(": ")
        field = "subject" if part == "subject" else "body"
        if part == "HTML body" and "body" in problems:
            continue
        problems.setdefault(field, what)
    if not body.strip():
        problems["body"] = "the message is empty"
    return problems


def edit(
    session: Session, reminder_id: int, user: str, subject: str | None, body: str, now: datetime
) -> tuple[Decision, dict[str, str]]:
    """Save an approver's edit and approve it; or return what the linter refuses, by field."""
    reminder = _load(session, reminder_id)
    problems = edit_problems(reminder.channel, subject, body)
    if problems:
        return Decision(False, reminder_id, reminder.state, None, None), problems
    before = _text_of(reminder)
    after = (f"{subject}\n\n" if reminder.channel == "email" else "") + body.strip()
    values: dict[str, Any] = {
        "approved_by": user,
        "approved_at": now,
        "body_text": body.strip() + "\n",
    }
    if reminder.channel == "email":
        values["subject"] = (subject or "").strip()
        values["body_html"] = _html_of(body)
    approved = state.transition(
        session,
        [reminder_id],
        from_states=(PLANNED,),
        to=APPROVED,
        now=now,
        actor=user,
        events=[
            ("reminder.edited", {"before": before, "after": after}),
            ("reminder.approved", {"edited": True}),
        ],
        **values,
    )
    if not approved:
        return _outcome(session, reminder_id, False), {}
    tier = session.scalar(select(Customer.tier).where(Customer.id == reminder.customer_id)) or ""
    session.add(
        EditExample(
            reminder_id=reminder_id,
            tier=tier,
            step_key=reminder.step_key,
            before=before,
            after=after,
            editor=user,
            created_at=now,
        )
    )
    return _outcome(session, reminder_id, True), {}


def _text_of(reminder: Reminder) -> str:
    if reminder.channel == "email":
        return f"{reminder.subject or ''}\n\n{(reminder.body_text or '').strip()}"
    return (reminder.body_text or "").strip()


def _html_of(body: str) -> str:
    paragraphs = [p.strip() for p in body.strip().split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs)


@dataclass(frozen=True)
class BulkDecision:
    """What Approve all did: the reminders it approved, and the stale ones it cancelled instead."""

    approved: list[int]
    cancelled: dict[int, str]  # reminder id -> why (paid, promised, payment_plan, ...)

    def changed(self) -> list[int]:
        return [*self.approved, *self.cancelled]


def approve_all(
    session: Session, day: date, tier: str, user: str, now: datetime, *, rules: StaleRules
) -> BulkDecision:
    """Approve every reminder of a tier still waiting on that day's plan; a stale one is cancelled
    instead, exactly as Approve would cancel it."""
    waiting = (
        select(Reminder.id)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(
            Reminder.plan_date == day,
            Reminder.state == PLANNED,
            Reminder.action == ReminderAction.REMIND,
            Customer.tier == tier,
        )
    )
    ids = list(session.scalars(waiting))
    cancelled: dict[int, str] = {}
    for reminder_id in ids:
        reason = cancel_if_stale(session, reminder_id, now, rules)
        if reason is not None:
            cancelled[reminder_id] = reason
    approved = state.transition(
        session,
        [reminder_id for reminder_id in ids if reminder_id not in cancelled],
        from_states=(PLANNED,),
        to=APPROVED,
        now=now,
        actor=user,
        events=[("reminder.approved", {"approve_all": tier})],
        approved_by=user,
        approved_at=now,
    )
    return BulkDecision(approved, cancelled)


def recent_examples(session: Session, tier: str, step_key: str, limit: int = 2) -> list[str]:
    """How this team wrote this step last time (for the edit modal)."""
    return list(
        session.scalars(
            select(EditExample.after)
            .where(EditExample.tier == tier, EditExample.step_key == step_key)
            .order_by(EditExample.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Draft:
    """A reminder as an approver sees it in a form: what it says, to whom, at which step."""

    reminder_id: int
    state: str
    channel: str | None
    subject: str | None
    body: str
    step_key: str
    customer_name: str
    examples: tuple[str, ...] = ()  # how this team wrote this step last time, when asked for


def draft_of(session: Session, reminder_id: int, examples: bool = False) -> Draft | None:
    """The reminder behind an Edit or Skip form, or None if there is no such reminder. With
    `examples`, the team's recent edits of the same step for the customer's tier too."""
    found = session.execute(
        select(Reminder, Customer.name, Customer.tier)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.id == reminder_id)
    ).first()
    if found is None:
        return None
    reminder, customer_name, tier = found
    return Draft(
        reminder_id=reminder.id,
        state=reminder.state,
        channel=reminder.channel,
        subject=reminder.subject,
        body=reminder.body_text or "",
        step_key=reminder.step_key,
        customer_name=customer_name,
        examples=tuple(recent_examples(session, tier, reminder.step_key)) if examples else (),
    )
