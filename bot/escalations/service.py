"""Escalations: the moments a person takes over an account, and the full story they see.

One open escalation per customer at a time: a new reason (a reply, a card dispute, a playbook
step) adds to it rather than opening a second thread. `view` gathers what the Slack thread shows:
the open invoices with balance and days overdue, and every touch, reply, payment and decision in
time order. The actions behind the thread's buttons (claim, promise, dispute, resume, resolve)
each write their Event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import insert_rows
from bot.core.errors import UserError
from bot.core.models import Customer, Escalation, Event, Invoice
from bot.core.slack_retries import NOTE, owe_with
from bot.ledger.accounts import cancel_waiting

OPEN_STATES = ("open", "claimed")
ADDED = "escalation.added"  # a reason added to the customer's open escalation
THREAD_NOTE = "thread_note"  # in ADDED's payload: its thread is owed a note saying so
HISTORY_LIMIT = 200  # events shown in a thread; older ones stay in `arbot status`


def owner_for(customer: Customer, routes: dict[str, str]) -> str | None:
    return customer.owner_slack_id or routes.get(customer.tier)


def open_or_add(
    session: Session,
    customer_id: int,
    reason: str,
    now: datetime,
    *,
    detail: str | None = None,
    reminder_id: int | None = None,
    owner: str | None = None,
    actor: str = audit.SYSTEM,
    inbound_id: int | None = None,
) -> tuple[Escalation, bool]:
    """The customer's open escalation with this reason added, or a new one. True when new.

    A reason added to an escalation already in Slack owes its thread a note, in this same
    transaction (bot/escalations/thread_notes.py posts it, the sweep until Slack takes it); one
    not in Slack yet is told by the history posted with it, unless it is being posted now (its
    history was read before this reason: the note is owed once its thread is stored).
    `inbound_id`: the reply that is the reason, quoted in that note."""
    current = open_for(session, customer_id)
    if current is not None:
        told = bool(current.slack_channel and current.slack_thread_ts)
        payload: dict[str, object] = {"escalation": current.id, "reason": reason, "detail": detail}
        if inbound_id is not None:
            payload["inbound"] = inbound_id
        if owner is not None:  # who a note about this reason may call on (thread_notes)
            payload["owner"] = owner
        if told or current.slack_claimed_at is not None:
            payload[THREAD_NOTE] = True
        audit.record(
            session,
            now,
            ADDED,
            actor=actor,
            customer_id=customer_id,
            reminder_id=reminder_id,
            payload=payload,
        )
        if told:
            assert current.slack_channel and current.slack_thread_ts
            owe_with(
                session,
                NOTE,
                current.slack_channel,
                current.slack_thread_ts,
                f"a reason added: {reason}",
                escalation_id=current.id,
            )
        return current, False
    escalation = Escalation(
        customer_id=customer_id,
        reminder_id=reminder_id,
        reason=reason,
        detail=detail,
        state="open",
        owner_slack_id=owner,
        opened_at=now,
    )
    session.add(escalation)
    session.flush()
    audit.record(
        session,
        now,
        "escalation.opened",
        actor=actor,
        customer_id=customer_id,
        reminder_id=reminder_id,
        payload={"escalation": escalation.id, "reason": reason, "detail": detail, "owner": owner},
    )
    return escalation, True


def open_many(
    session: Session, columns: Sequence[str], rows: list[tuple[Any, ...]], now: datetime
) -> set[int]:
    """The plan's escalations, written at once (bot/core/bulk_rows: COPY on PostgreSQL, one
    executemany on SQLite): the bulk twin of `open_or_add`. Each row holds the values of
    `columns`, in their order, for a customer the planner escalates; the planner holds every
    customer who had an open escalation when it read them, and the plan records the
    `escalation.opened` events of those written here with its own.

    A reply may have opened one since the plan read them: a customer found with an open
    escalation when the rows are written gets the row's reason added to it, as `open_or_add`
    does, instead of a second one. Returns those customers."""
    if not rows:
        return set()
    customer = columns.index("customer_id")
    opened = set(
        session.scalars(
            select(Escalation.customer_id).where(
                Escalation.customer_id.in_({one[customer] for one in rows}),
                Escalation.state.in_(OPEN_STATES),
            )
        )
    )
    table: Any = Escalation.__table__
    insert_rows(session, table, columns, [one for one in rows if one[customer] not in opened])
    for one in rows:
        if one[customer] in opened:
            values = dict(zip(columns, one, strict=True))
            open_or_add(
                session,
                values["customer_id"],
                values["reason"],
                now,
                detail=values.get("detail"),
                reminder_id=values.get("reminder_id"),
                owner=values.get("owner_slack_id"),
            )
    return opened


def open_for(session: Session, customer_id: int) -> Escalation | None:
    return session.scalars(
        select(Escalation)
        .where(Escalation.customer_id == customer_id, Escalation.state.in_(OPEN_STATES))
        .order_by(Escalation.id)
    ).first()


def customer_name(session: Session, escalation_id: int) -> str | None:
    return session.scalar(
        select(Customer.name)
        .join(Escalation, Escalation.customer_id == Customer.id)
        .where(Escalation.id == escalation_id)
    )


def in_thread(session: Session, channel: str | None, thread_ts: str) -> int | None:
    """The escalation whose Slack thread this is, if any."""
    return session.scalars(
        select(Escalation.id).where(
            Escalation.slack_channel == channel, Escalation.slack_thread_ts == thread_ts
        )
    ).first()


class Unresolved(NamedTuple):
    customer_name: str
    reason: str
    owner: str | None  # a Slack user or group id
    state: str


def unresolved(session: Session, limit: int) -> list[Unresolved]:
    """The escalations not yet resolved, oldest first."""
    rows = session.execute(
        select(Customer.name, Escalation.reason, Escalation.owner_slack_id, Escalation.state)
        .join(Customer, Customer.id == Escalation.customer_id)
        .where(Escalation.state != "resolved")
        .order_by(Escalation.opened_at)
        .limit(limit)
    ).all()
    return [Unresolved(*row) for row in rows]


def load(session: Session, escalation_id: int) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise UserError(f"escalation {escalation_id} does not exist")
    return escalation


def claim(session: Session, escalation_id: int, user: str, now: datetime) -> str | None:
    """Claim it; returns who had claimed it already (None when this user now holds it)."""
    escalation = load(session, escalation_id)
    changed = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation_id, Escalation.state == "open")
        .values(state="claimed", claimed_at=now, owner_slack_id=user)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(escalation)
        return escalation.owner_slack_id if escalation.state == "claimed" else escalation.state
    _siblings(session, escalation, ("open",), state="claimed", claimed_at=now, owner_slack_id=user)
    audit.record(
        session,
        now,
        "escalation.claimed",
        actor=user,
        customer_id=escalation.customer_id,
        payload={"escalation": escalation_id},
    )
    return None


def resolve(session: Session, escalation_id: int, user: str, outcome: str, now: datetime) -> bool:
    escalation = load(session, escalation_id)
    changed = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation_id, Escalation.state.in_(OPEN_STATES))
        .values(state="resolved", resolved_at=now, resolution=outcome[:2000])
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _siblings(
        session,
        escalation,
        OPEN_STATES,
        state="resolved",
        resolved_at=now,
        resolution=outcome[:2000],
    )
    audit.record(
        session,
        now,
        "escalation.resolved",
        actor=user,
        customer_id=escalation.customer_id,
        payload={"escalation": escalation_id, "outcome": outcome},
    )
    return True


@dataclass(frozen=True)
class Resolved:
    """How an escalation was closed: who (a Slack user id, or "system"), when, and the outcome."""

    actor: str
    at: datetime
    outcome: str


def resolved(session: Session, escalation_id: int) -> Resolved | None:
    """Who resolved it, when and how; None while it is open (or claimed)."""
    escalation = load(session, escalation_id)
    if escalation.state != "resolved" or escalation.resolved_at is None:
        return None
    actor = session.scalar(
        select(Event.actor)
        .where(
            Event.kind == "escalation.resolved",
            Event.customer_id == escalation.customer_id,
            Event.at == escalation.resolved_at,
        )
        .order_by(Event.id.desc())
        .limit(1)
    )
    return Resolved(actor or audit.SYSTEM, escalation.resolved_at, escalation.resolution or "")


def _siblings(
    session: Session, escalation: Escalation, states: tuple[str, ...], **values: object
) -> None:
    """Other escalations sharing this one's Slack thread follow what was done in it."""
    if not escalation.slack_thread_ts:
        return
    session.execute(
        update(Escalation)
        .where(
            Escalation.id != escalation.id,
            Escalation.slack_channel == escalation.slack_channel,
            Escalation.slack_thread_ts == escalation.slack_thread_ts,
            Escalation.state.in_(states),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def open_invoices(session: Session, customer_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer_id, Invoice.status == "open")
            .order_by(Invoice.due_date, Invoice.number)
        )
    )


def record_promise(
    session: Session,
    escalation_id: int,
    user: str,
    promised: date,
    grace_days: int,
    now: datetime,
    today: date | None = None,
    timezone: str = "UTC",
) -> datetime:
    """The customer promised to pay by `promised`: nothing automated until promised + grace.
    Returns when the sequence may resume. A promise before `today`, the business's date
    (Runtime.today(), as the form checked it), is refused; without it, the date of `now` in UTC,
    which in the business's evening west of UTC is already tomorrow."""
    escalation = load(session, escalation_id)
    if promised < (today or now.date()):
        raise UserError(f"{promised.isoformat()} is in the past: give the date they promised")
    return promise(
        session, escalation.customer_id, promised, grace_days, now, actor=user, timezone=timezone
    )


def promise(
    session: Session,
    customer_id: int,
    promised: date,
    grace_days: int,
    now: datetime,
    actor: str = audit.SYSTEM,
    timezone: str = "UTC",
) -> datetime:
    """Record the promise on the customer's open invoices and pause the customer through
    `promised` plus `grace_days`, days in `timezone` (the business's, ARBOT_TIMEZONE, as the
    missed-promise sweep counts them). Returns when the sequence may resume: the start of the
    next day there, in that timezone."""
    customer = session.get(Customer, customer_id)
    assert customer is not None
    until = promise_ends(promised, grace_days, timezone)
    for invoice in open_invoices(session, customer_id):
        invoice.promise_date = promised
        invoice.updated_at = now
    resume_at = until.astimezone(UTC)
    customer.paused_until = max(resume_at, customer.paused_until or resume_at)
    customer.updated_at = now
    cancel_waiting(session, customer_id, "promised", now)
    audit.record(
        session,
        now,
        "promise.recorded",
        actor=actor,
        customer_id=customer_id,
        payload={"promised": promised.isoformat(), "resume_after": until.isoformat()},
    )
    return until


def promise_ends(promised: date, grace_days: int, timezone: str) -> datetime:
    """When a promise to pay by `promised` stops holding the account back: midnight after its
    last day of grace, in `timezone` (the day the missed-promise sweep clears it there)."""
    return datetime.combine(
        promised + timedelta(days=grace_days + 1), time(0), tzinfo=ZoneInfo(timezone)
    )


def mark_disputed(
    session: Session,
    escalation_id: int,
    user: str,
    reason: str,
    now: datetime,
    numbers: list[str] | None = None,
) -> list[str]:
    """Mark the invoices a person picked disputed (None: every open one). UserError when none
    of those picked is open any more."""
    escalation = load(session, escalation_id)
    if numbers is not None:
        still_open = {i.number for i in open_invoices(session, escalation.customer_id)}
        numbers = [n for n in numbers if n in still_open]
        if not numbers:
            raise UserError(
                "None of the invoices picked is still open, so nothing was marked disputed."
            )
    return dispute(session, escalation.customer_id, reason, now, actor=user, numbers=numbers)


def dispute(
    session: Session,
    customer_id: int,
    reason: str,
    now: datetime,
    actor: str = audit.SYSTEM,
    numbers: list[str] | None = None,
) -> list[str]:
    """Mark the customer's open invoices disputed (those named, when the reply names some): no
    automated message goes out about them until a person resolves it."""
    invoices = open_invoices(session, customer_id)
    named = [i for i in invoices if numbers and i.number in numbers]
    chosen = named or invoices
    for invoice in chosen:
        invoice.disputed, invoice.dispute_reason, invoice.updated_at = True, reason[:2000], now
        audit.record(
            session,
            now,
            "invoice.disputed",
            actor=actor,
            customer_id=customer_id,
            invoice_id=invoice.id,
            payload={"number": invoice.number, "reason": reason},
        )
    cancel_waiting(session, customer_id, "disputed", now)
    return [i.number for i in chosen]


CLEARABLE = ("promise", "dispute", "pause")  # what Resume may lift, each only when chosen


def on_hold(
    session: Session, escalation_id: int, now: datetime, timezone: str = "UTC"
) -> dict[str, str]:
    """What holds the account's sequence back that Resume could clear, each in words; a pause's
    end as a date in `timezone` (the business's)."""
    escalation = load(session, escalation_id)
    customer = session.get(Customer, escalation.customer_id)
    assert customer is not None
    invoices = open_invoices(session, customer.id)
    found: dict[str, str] = {}
    promised = [i for i in invoices if i.promise_date is not None]
    if promised:
        found["promise"] = "The promise to pay by " + ", ".join(
            f"{i.promise_date.isoformat()} ({i.number})" for i in promised if i.promise_date
        )
    disputed = [i for i in invoices if i.disputed]
    if disputed:
        found["dispute"] = "The dispute on " + ", ".join(
            f"{i.number}" + (f" ({i.dispute_reason[:80]})" if i.dispute_reason else "")
            for i in disputed
        )
    if customer.paused_until is not None and customer.paused_until > now:
        ends = customer.paused_until.astimezone(ZoneInfo(timezone)).date()
        found["pause"] = f"The pause until {ends.isoformat()}"
    return found


def resume(
    session: Session,
    escalation_id: int,
    user: str,
    now: datetime,
    clear: frozenset[str],
    timezone: str = "UTC",
) -> tuple[list[str], list[str]]:
    """A person says automation may go on: lift what they chose (`clear`: promise, dispute,
    pause) and nothing else, and close the escalation. Returns (cleared, kept) in words; what
    is kept still holds its invoices back. The next morning's plan picks the sequence up."""
    escalation = load(session, escalation_id)
    customer = session.get(Customer, escalation.customer_id)
    assert customer is not None
    holding = on_hold(session, escalation_id, now, timezone)
    for invoice in open_invoices(session, customer.id):
        if "dispute" in clear and invoice.disputed:
            invoice.disputed, invoice.dispute_reason, invoice.updated_at = False, None, now
        if "promise" in clear and invoice.promise_date is not None:
            invoice.promise_date, invoice.updated_at = None, now
    if "pause" in clear and customer.paused_until is not None:
        customer.paused_until, customer.updated_at = None, now
    cleared = [text for key, text in holding.items() if key in clear]
    kept = [text for key, text in holding.items() if key not in clear]
    audit.record(
        session,
        now,
        "customer.resumed",
        actor=user,
        customer_id=customer.id,
        payload={"cleared": sorted(k for k in holding if k in clear), "kept": kept},
    )
    outcome = "Sequence resumed" + (
        f"; cleared: {', '.join(k for k in holding if k in clear)}" if cleared else ""
    )
    resolve(session, escalation_id, user, outcome, now)
    return cleared, kept


def reopen(session: Session, escalation_id: int, user: str, now: datetime) -> None:
    """Open a resolved escalation again (its thread takes the account back to a person). Refused
    when it is not resolved, or when the customer has another escalation open."""
    escalation = load(session, escalation_id)
    other = open_for(session, escalation.customer_id)
    if other is not None and other.id != escalation_id:
        raise UserError("this customer already has an open escalation: carry on in that thread")
    changed = session.execute(
        update(Escalation)
        .where(Escalation.id == escalation_id, Escalation.state == "resolved")
        .values(state="open", resolved_at=None, resolution=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise UserError("this escalation is not resolved, so there is nothing to reopen")
    audit.record(
        session,
        now,
        "escalation.reopened",
        actor=user,
        customer_id=escalation.customer_id,
        payload={"escalation": escalation_id},
    )


def thread_note(
    session: Session,
    escalation_id: int,
    user: str,
    text: str,
    now: datetime,
    mentions: Sequence[tuple[int, str]] = (),
) -> None:
    """A message a person wrote in the thread: part of the customer's history. `mentions`: the
    people Slack mentioned in it, each as (where its `@U0ALICE` starts in `text`, their id),
    kept in the payload so that the history mentions them and nothing else that looks alike."""
    escalation = load(session, escalation_id)
    kept = text[:3000]
    payload: dict[str, object] = {"escalation": escalation_id, "text": kept}
    # always, an empty list too: a note without the field was stored before notes kept it
    payload["mentions"] = [
        [at, person] for at, person in mentions if at + 1 + len(person) <= len(kept)
    ]
    audit.record(
        session, now, "note.added", actor=user, customer_id=escalation.customer_id, payload=payload
    )


def unclaimed(session: Session, now: datetime, after: timedelta) -> list[Escalation]:
    """Open escalations nobody claimed within `after` (business time, counted by the caller),
    not raised again within that time either."""
    rows = session.scalars(
        select(Escalation).where(
            Escalation.state == "open", Escalation.slack_thread_ts.is_not(None)
        )
    ).all()
    return [e for e in rows if now - (e.raised_at or e.opened_at) >= after]
