"""What approvers do to a planned reminder: approve, edit, skip, approve a whole tier.

Each is one conditional UPDATE (`... WHERE state = 'planned'`) and an Event in the same
transaction: a double click, two approvers at once or a Slack retry changes nothing the second
time, and the second actor learns who acted first. Approve, Edit and Approve all first ask whether
the reminder is stale (bot/reminders/stale.py, with the rules the send claim uses): a stale one is
cancelled with its reason instead of approved.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, or_, select
from sqlalchemy.orm import Session

from bot.core import message_versions
from bot.core.errors import UserError
from bot.core.models import (
    Customer,
    EditExample,
    Event,
    Invoice,
    MessageVersion,
    Reminder,
    ReminderInvoice,
    SlackRetry,
)
from bot.core.slack_retries import REDRAW
from bot.core.vocabulary import AUTO_APPROVER, TRUSTED_APPROVER, ReminderAction
from bot.learning.trust_rules import review_trust
from bot.planning.messages import Sender
from bot.reminders import state
from bot.reminders.message_facts import ledger_values_of, missing_facts, stated_amounts
from bot.reminders.shown import Message, messages_of
from bot.reminders.stale import StaleRules, stale_reasons, why_stale
from bot.reminders.state import APPROVED, PLANNED, SKIPPED
from integrations.base.slack import EDIT_SUBJECT_LIMIT, edit_body_limit
from playbooks.lint import lint_message
from playbooks.render import Rendered


@dataclass(frozen=True)
class Decision:
    changed: bool
    reminder_id: int
    state: str
    by: str | None  # who acted (first)
    at: datetime | None
    reason: str | None = None  # why it was cancelled (paid, disputed, ...), when it was
    cancelled_now: bool = False  # this call found it stale and cancelled it, instead of approving
    # Left waiting: its message is no longer the one the approver was shown (bot/reminders/shown.py)
    changed_since: bool = False


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
    return Decision(changed, reminder_id, reminder.state, by, at, reminder.cancel_reason)


def send_no_sooner_than(earliest: datetime) -> ColumnElement[Any]:
    """An approved reminder's send_after: as planned, but never before `earliest` (the end of its
    undo window). A later approval of the same reminder (after an Undo) moves it on again."""
    return case(
        (Reminder.send_after.is_(None), earliest),
        (Reminder.send_after < earliest, earliest),
        else_=Reminder.send_after,
    )


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
    session: Session,
    reminder_id: int,
    user: str,
    now: datetime,
    *,
    rules: StaleRules,
    undo: timedelta = timedelta(0),
    shown: str | None = None,
) -> Decision:
    """Approve a planned reminder, unless it is stale: then it is cancelled instead. It goes out
    no sooner than `undo` from now, so that the approval can be taken back (`withdraw`).

    With `shown`, the version of its message the approver's card showed (bot/reminders/shown.py),
    only that message is approved: a reminder whose message changed since (an Edit, an Edit then
    Undo, a new draft, a new address of its contact) is left waiting (`changed_since`). None
    approves the message as it stands (no card was shown: the demo, a simulation)."""
    if cancel_if_stale(session, reminder_id, now, rules):
        return replace(_outcome(session, reminder_id, False), cancelled_now=True)
    same: list[ColumnElement[bool]] = []
    if shown is not None:
        reminder = _load(session, reminder_id)
        message = messages_of(session, [reminder_id])[reminder_id]  # as stored now
        if reminder.state == PLANNED and message.version != shown:
            return replace(_outcome(session, reminder_id, False), changed_since=True)
        same = message.unchanged()  # and still so when the approval is written
    approved = state.transition(
        session,
        [reminder_id],
        from_states=(PLANNED,),
        to=APPROVED,
        now=now,
        actor=user,
        events=[("reminder.approved", {})],
        where=[Reminder.action == ReminderAction.REMIND, *same],
        approved_by=user,
        approved_at=now,
        send_after=send_no_sooner_than(now + undo),
    )
    return _outcome(session, reminder_id, bool(approved))


def withdraw(session: Session, reminder_id: int, user: str, now: datetime) -> Decision:
    """Undo an approval: back to planned (waiting for Approve, Edit or Skip again), as long as the
    send worker has not taken it (`approved`, not yet `sending`). An edit saved with the approval
    stays; the reminder's send time stays no sooner than the undone approval allowed."""
    reminder = _load(session, reminder_id)
    was = reminder.approved_by
    withdrawn = state.transition(
        session,
        [reminder_id],
        from_states=(APPROVED,),
        to=PLANNED,
        now=now,
        actor=user,
        events=[("reminder.approval_withdrawn", {"approved_by": was})],
        where=[Reminder.action == ReminderAction.REMIND, Reminder.approved_by != AUTO_APPROVER],
        approved_by=None,
        approved_at=None,
    )
    return _outcome(session, reminder_id, bool(withdrawn))


def skip(session: Session, reminder_id: int, user: str, reason: str, now: datetime) -> Decision:
    """The step counts as done for its invoices (their ReminderInvoice rows stay). A reminder
    waits for a click (`planned`), or was approved by arbot for a trusted step and the send
    worker has not taken it yet: a person's approval is never skipped over."""
    skipped = state.transition(
        session,
        [reminder_id],
        from_states=(PLANNED, APPROVED),
        to=SKIPPED,
        now=now,
        actor=user,
        events=[("reminder.skipped", {"reason": reason.strip()})],
        where=[skippable()],
        approved_by=None,  # who skipped it is in its event: not arbot's approval any more
        approved_at=None,
    )
    return _outcome(session, reminder_id, bool(skipped))


def skippable() -> ColumnElement[bool]:
    """Which reminders a person may skip: those waiting for a click, and those a trusted step
    approved automatically, until the send worker claims them."""
    return or_(Reminder.state == PLANNED, Reminder.approved_by == TRUSTED_APPROVER)


def can_skip(draft_state: str, by: str | None) -> bool:
    """The same rule for a reminder already read (the Skip form opens only when it holds)."""
    return draft_state == PLANNED or (draft_state == APPROVED and by == TRUSTED_APPROVER)


def edit_problems(
    channel: str | None,
    subject: str | None,
    body: str,
    original: str | None = None,
    invoice_numbers: Collection[str] = (),
    amounts: Collection[str] = (),
    values: Collection[str] = (),
) -> dict[str, str]:
    """What is wrong with an edited message, by field (`subject`, `body`): longer than the Edit
    form holds (a client may send more than the form lets a person type), what the linter
    refuses (a text that takes more SMS segments than the sender sends, among others), or
    (given the `original` message) a fact of it the edit lost: an invoice number, an amount,
    the payment link or the offer to send payment details (`amounts`: those the message states,
    as it writes them); empty = fine. The linter reads the edit around `values`, the ledger's
    (names, invoice numbers): a forbidden word typed anywhere else is refused."""
    problems: dict[str, str] = {}
    if channel != "sms" and len(subject or "") > EDIT_SUBJECT_LIMIT:
        problems["subject"] = (
            f"{len(subject or ''):,} characters: shorten it to at most {EDIT_SUBJECT_LIMIT}"
        )
    if len(body) > edit_body_limit(channel):
        problems["body"] = (
            f"{len(body):,} characters: shorten it to at most {edit_body_limit(channel):,}"
        )
    if problems:  # the linter reads the whole text: not one that long
        return problems
    if channel == "sms":
        message = Rendered(subject="-", text="unsubscribe", html="unsubscribe", sms=body)
    else:  # a subject of only spaces is an empty one (it is saved stripped)
        message = Rendered(subject=(subject or "").strip(), text=body, html=body, sms="Reply STOP")
    for problem in lint_message(message, values=values):
        part, _, what = problem.partition(": ")
        field = "subject" if part == "subject" else "body"
        if part == "HTML body" and "body" in problems:
            continue
        problems.setdefault(field, what)
    if not body.strip():
        problems["body"] = "the message is empty"
    elif original is not None:
        missing = missing_facts(original, f"{subject or ''}\n\n{body}", invoice_numbers, amounts)
        if missing:
            problems.setdefault("body", "put back " + "; ".join(missing))
    return problems


def edit(
    session: Session,
    reminder_id: int,
    user: str,
    subject: str | None,
    body: str,
    now: datetime,
    *,
    rules: StaleRules,
    undo: timedelta = timedelta(0),
    sender: Sender | None = None,
) -> tuple[Decision, dict[str, str]]:
    """Save an approver's edit and approve it; or return what the linter refuses, by field (read
    around the ledger's values and the `sender`'s, as the plan's linter reads the template). A
    stale reminder is cancelled instead, as Approve does, whatever the edit says."""
    if cancel_if_stale(session, reminder_id, now, rules):
        return replace(_outcome(session, reminder_id, False), cancelled_now=True), {}
    reminder = _load(session, reminder_id)
    problems = edit_problems(
        reminder.channel,
        subject,
        body,
        _text_of(reminder),
        invoice_numbers_of(session, reminder_id),
        stated_amounts(session, reminder_id, reminder.language),
        ledger_values_of(session, reminder, sender),
    )
    if problems:
        return Decision(False, reminder_id, reminder.state, None, None), problems
    before = _text_of(reminder)
    after = (f"{subject}\n\n" if reminder.channel == "email" else "") + body.strip()
    values: dict[str, Any] = {
        "approved_by": user,
        "approved_at": now,
        "send_after": send_no_sooner_than(now + undo),
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
        where=[Reminder.action == ReminderAction.REMIND],
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
    session.flush()
    review_trust(session, now)  # an edit of a trusted step's draft takes its trust back at once
    return _outcome(session, reminder_id, True), {}


def invoice_numbers_of(session: Session, reminder_id: int) -> tuple[str, ...]:
    """The numbers of the invoices a reminder is about."""
    return tuple(
        session.scalars(
            select(Invoice.number)
            .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
            .where(ReminderInvoice.reminder_id == reminder_id)
            .order_by(Invoice.number)
        )
    )


def _text_of(reminder: Reminder) -> str:
    if reminder.channel == "email":
        return f"{reminder.subject or ''}\n\n{(reminder.body_text or '').strip()}"
    return (reminder.body_text or "").strip()


def _html_of(body: str) -> str:
    paragraphs = [p.strip() for p in body.strip().split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs)


@dataclass(frozen=True)
class BulkDecision:
    """What Approve all did: the reminders it approved, the stale ones it cancelled instead, and
    those it left waiting because their message changed since the header showed it (`left`) or
    their card may not show it yet (`redrawing`: Slack refused its last redraw, owed to the sweep)."""

    approved: list[int]
    cancelled: dict[int, str]  # reminder id -> why (paid, promised, payment_plan, ...)
    left: dict[int, str] = field(default_factory=dict)  # reminder id -> its customer's name
    redrawing: dict[int, str] = field(default_factory=dict)  # reminder id -> its customer's name

    def changed(self) -> list[int]:
        return [*self.approved, *self.cancelled]


@dataclass(frozen=True)
class Shown:
    """What an Approve all button covers: the reminders its header showed waiting, named one by
    one, or (too many to name in a button) every one of the tier numbered up to `up_to`, the
    highest id there was when the header was drawn. Either way only reminders whose card is in
    Slack (posted) are approved. With `versions` (reminder id -> the version of its message the
    header was drawn with), only those messages: one changed since is left waiting."""

    ids: frozenset[int] | None = None
    up_to: int | None = None
    versions: Mapping[int, str] | None = None


def approve_all(
    session: Session,
    day: date,
    tier: str,
    user: str,
    now: datetime,
    *,
    rules: StaleRules,
    shown: Shown | None = None,
    undo: timedelta = timedelta(0),
) -> BulkDecision:
    """Approve the reminders of a tier still waiting on that day's plan (with `shown`, only those
    the button covers and whose card was posted); a stale one is cancelled instead, by the same
    check as Approve (`stale_reasons`) and with the same reason."""
    waiting = (
        select(Reminder)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(
            Reminder.plan_date == day,
            Reminder.state == PLANNED,
            Reminder.action == ReminderAction.REMIND,
            Customer.tier == tier,
        )
        .order_by(Reminder.id)
    )
    if shown is not None:
        waiting = waiting.where(Reminder.slack_ts.is_not(None))
        if shown.ids is not None:
            waiting = waiting.where(Reminder.id.in_(sorted(shown.ids)))
        if shown.up_to is not None:
            waiting = waiting.where(Reminder.id <= shown.up_to)
    reminders = list(session.scalars(waiting))
    stale = stale_reasons(session, reminders, now, rules)
    cancelled: dict[int, str] = {}
    for reason in sorted(set(stale.values())):
        ids = [reminder_id for reminder_id, why in stale.items() if why == reason]
        for reminder_id in state.cancel(
            session, ids, from_states=(PLANNED,), reason=reason, now=now
        ):
            cancelled[reminder_id] = reason
    fresh = [r.id for r in reminders if r.id not in stale]
    versions = shown.versions if shown is not None else None
    # The messages as stored now (not as `reminders` were read), each approved only while its
    # version is the one shown, up to the UPDATE that writes the approval.
    messages = messages_of(session, fresh) if versions is not None else {}
    left = _changed_since(session, messages, versions) if versions is not None else {}
    # The header is drawn after the cards, from the database: when a card's redraw failed, the
    # header names a version that card does not show yet (until the sweep draws it).
    redrawing = (
        _card_not_redrawn(session, [i for i in fresh if i not in left])
        if versions is not None
        else {}
    )
    chosen = [i for i in fresh if i not in left and i not in redrawing]
    approved = state.transition(
        session,
        chosen,
        from_states=(PLANNED,),
        to=APPROVED,
        now=now,
        actor=user,
        events=[("reminder.approved", {"approve_all": tier})],
        where=[_still_as_read(messages, chosen)] if versions is not None and chosen else [],
        approved_by=user,
        approved_at=now,
        send_after=send_no_sooner_than(now + undo),
    )
    if versions is not None and len(approved) < len(chosen):  # edited since they were read
        left |= _still_waiting(session, set(chosen) - set(approved))
    return BulkDecision(approved, cancelled, left, redrawing)


def _still_as_read(messages: Mapping[int, Message], reminder_ids: list[int]) -> ColumnElement[bool]:
    """A condition for the approving UPDATE: each of `reminder_ids` only while its message is
    still the one in `messages`, one term per distinct message (an edit committed since makes
    its term false)."""
    same: dict[Message, list[int]] = {}
    for reminder_id in reminder_ids:
        same.setdefault(messages[reminder_id], []).append(reminder_id)
    return or_(*(and_(Reminder.id.in_(ids), *message.unchanged()) for message, ids in same.items()))


def _still_waiting(session: Session, reminder_ids: Collection[int]) -> dict[int, str]:
    """Those of `reminder_ids` still waiting for approval, with their customers' names."""
    return dict(
        session.execute(
            select(Reminder.id, Customer.name)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id.in_(sorted(reminder_ids)), Reminder.state == PLANNED)
            .order_by(Reminder.id)
        ).all()
    )


def _card_not_redrawn(session: Session, reminder_ids: list[int]) -> dict[int, str]:
    """Those of `reminder_ids` whose card's message may not show their message as it stands: a
    redraw of it is owed to the sweep (Slack refused it), or was asked for and nobody is drawing
    it (its drawer died or gave up; bot/core/message_versions.py); with their customers' names.
    One query."""
    if not reminder_ids:
        return {}
    owed = exists().where(
        SlackRetry.kind == REDRAW,
        SlackRetry.channel == Reminder.slack_channel,
        SlackRetry.ts == Reminder.slack_ts,
    )
    abandoned = exists().where(
        MessageVersion.channel == Reminder.slack_channel,
        MessageVersion.ts == Reminder.slack_ts,
        message_versions.left_undrawn(message_versions.REAL_TIME.now()),
    )
    return dict(
        session.execute(
            select(Reminder.id, Customer.name)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id.in_(sorted(reminder_ids)), or_(owed, abandoned))
            .order_by(Reminder.id)
        ).all()
    )


def _changed_since(
    session: Session, messages: Mapping[int, Message], shown: Mapping[int, str]
) -> dict[int, str]:
    """Those of `messages` (by reminder id) that are not the version `shown`, with their
    customers' names."""
    changed = [
        reminder_id
        for reminder_id, message in messages.items()
        if shown.get(reminder_id) != message.version
    ]
    if not changed:
        return {}
    return dict(
        session.execute(
            select(Reminder.id, Customer.name)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id.in_(changed))
            .order_by(Reminder.id)
        ).all()
    )


def approved_together(
    session: Session, day: date, tier: str, approved_at: datetime, approved_by: str
) -> list[int]:
    """The reminders of a tier's plan on `day` one Approve all approved (by `approved_by`, at
    that instant) and still approved: what its Undo takes back, and no one else's approval made
    at the same instant."""
    return list(
        session.scalars(
            select(Reminder.id)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(
                Reminder.plan_date == day,
                Reminder.state == APPROVED,
                Reminder.approved_at == approved_at,
                Reminder.approved_by == approved_by,
                Customer.tier == tier,
            )
            .order_by(Reminder.id)
        )
    )


def withdraw_all(session: Session, ids: Collection[int], user: str, now: datetime) -> list[int]:
    """Undo an Approve all: each of `ids` still approved (not yet taken by the send worker) goes
    back to planned, as `withdraw` does one."""
    moved = []
    for reminder_id in sorted(ids):
        if withdraw(session, reminder_id, user, now).changed:
            moved.append(reminder_id)
    return moved


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
    by: str | None = None  # who approved, skipped or cancelled it, when someone did
    at: datetime | None = None
    reason: str | None = None  # why it was cancelled, when it was
    invoice_numbers: tuple[str, ...] = ()  # the invoices it is about
    # what of its message comes from the ledger or the settings (`ledger_values_of`): an edit
    # is linted around them
    values: tuple[str, ...] = ()
    # the amounts its message states, as it writes them (`stated_amounts`): an edit must keep
    # each it states
    amounts: tuple[str, ...] = ()

    @property
    def original(self) -> str:
        """Its message as it stands (subject and text): what an edit may not lose facts of."""
        return f"{self.subject or ''}\n\n{self.body.strip()}"


def draft_of(
    session: Session, reminder_id: int, examples: bool = False, sender: Sender | None = None
) -> Draft | None:
    """The reminder behind an Edit or Skip form, or None if there is no such reminder. With
    `examples`, the team's recent edits of the same step for the customer's tier too; its
    `values` hold the `sender`'s too (who the message is from)."""
    found = session.execute(
        select(Reminder, Customer.name, Customer.tier)
        .join(Customer, Customer.id == Reminder.customer_id)
        .where(Reminder.id == reminder_id)
    ).first()
    if found is None:
        return None
    reminder, customer_name, tier = found
    by, at = _who_acted(session, reminder) if reminder.state != PLANNED else (None, None)
    return Draft(
        reminder_id=reminder.id,
        state=reminder.state,
        channel=reminder.channel,
        subject=reminder.subject,
        body=reminder.body_text or "",
        step_key=reminder.step_key,
        customer_name=customer_name,
        examples=tuple(recent_examples(session, tier, reminder.step_key)) if examples else (),
        by=by,
        at=at,
        reason=reminder.cancel_reason,
        invoice_numbers=invoice_numbers_of(session, reminder.id),
        values=ledger_values_of(session, reminder, sender),
        amounts=stated_amounts(session, reminder.id, reminder.language),
    )
