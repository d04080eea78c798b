"""Notes on the customer's CRM company, written through an outbox: exactly once, retried.

When ARBOT_CRM_LOG_ACTIVITY is on, each `reminder.sent` and `escalation.opened` event of a
customer linked to a CRM company (`Customer.crm_ref`, set by `arbot sync`) becomes one `CrmNote`
(unique per CRM and event). The scheduler's sweep, and `arbot sync`, write the due ones:

- a note is claimed by one conditional UPDATE (`pending` → `writing`), committed before the CRM
  is called, so two sweeps never write it twice;
- written: `written`, with the CRM's note id;
- a 429 or server error (`SourceUnavailable`): `pending` again, tried after a backoff that
  doubles from BACKOFF_FIRST up to BACKOFF_LAST; after MAX_ATTEMPTS tries, `failed`;
- any other refusal (a missing scope, a company gone): `failed` at once, with the CRM's words;
- a claim older than CLAIM_LEASE (the process died during the call): `unknown`, never written
  again, since the CRM may have it.

Every `failed` or `unknown` note is told to a person in the finance channel, with what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import CrmNote, Customer, Event, Reminder, SyncState
from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from integrations.base.ledger import CrmSource
from integrations.base.mrkdwn import mrkdwn
from integrations.errors import SourceError, SourceUnavailable

log = logging.getLogger(__name__)

NOTED_EVENTS = ("reminder.sent", "escalation.opened")
MAX_ATTEMPTS = 6
BACKOFF_FIRST = timedelta(minutes=2)
BACKOFF_LAST = timedelta(hours=2)
CLAIM_LEASE = timedelta(minutes=10)
MARKER = "notes_after_event"  # in SyncState.summary: the last event already queued

OpenCrm = Callable[[], AbstractContextManager[CrmSource]]


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th try failed for a while: 2, 4, 8 … minutes."""
    return min(BACKOFF_FIRST * (1 << max(attempts - 1, 0)), BACKOFF_LAST)


def note_text(
    at: datetime, kind: str, step: str | None, channel: str | None, reason: object
) -> str:
    if kind == "reminder.sent":
        return f"{at:%Y-%m-%d}: arbot sent the payment reminder '{step}' by {channel}."
    return f"{at:%Y-%m-%d}: arbot handed the account to a person ({reason})."


def enqueue(session: Session, source: str, now: datetime) -> int:
    """Queue a note for each noted event since the marker, for customers linked to `source`;
    inside the caller's transaction. The first time, only events from now on are noted."""
    state = session.get(SyncState, source)
    last = session.scalar(select(func.max(Event.id))) or 0
    if state is None:
        return 0  # never synced: no customer is linked to this CRM yet
    summary = dict(state.summary or {})
    since = int(summary.get(MARKER, last if MARKER not in summary else 0))
    prefix = f"{source}:"
    rows = session.execute(
        select(
            Event.id,
            Event.at,
            Event.kind,
            Event.payload,
            Customer.id,
            Customer.crm_ref,
            Reminder.step_key,
            Reminder.channel,
        )
        .join(Customer, Customer.id == Event.customer_id)
        .outerjoin(Reminder, Reminder.id == Event.reminder_id)
        .where(
            Event.kind.in_(NOTED_EVENTS),
            Customer.crm_ref.startswith(prefix, autoescape=True),
            Event.id > since,
            Event.id <= last,
        )
        .order_by(Event.id)
    ).all()
    known = set(
        session.scalars(
            select(CrmNote.event_id).where(
                CrmNote.source == source, CrmNote.event_id.in_([r[0] for r in rows])
            )
        )
    )
    queued = 0
    for event_id, at, kind, payload, customer_id, crm_ref, step, channel in rows:
        if event_id in known:
            continue
        reason = (payload or {}).get("reason")
        session.add(
            CrmNote(
                source=source,
                event_id=event_id,
                customer_id=customer_id,
                crm_id=crm_ref[len(prefix) :],
                body=note_text(at, kind, step, channel, reason),
                state="pending",
                attempts=0,
                next_try_at=now,
                created_at=now,
            )
        )
        queued += 1
    state.summary = {**summary, MARKER: last}
    return queued


def write_due(
    runtime: Runtime, source: str, crm: CrmSource, slack: SlackOut | None = None
) -> tuple[int, list[str]]:
    """Write every due note of `source`: (how many were written, what failed, one line each)."""
    written, failed = 0, []
    while True:
        note = _claim(runtime, source)
        if note is None:
            break
        note_id, crm_id, body, attempts = note
        try:
            crm_note_id = crm.log_activity(crm_id, body)
        except SourceUnavailable as exc:
            if attempts < MAX_ATTEMPTS:
                _again(runtime, note_id, attempts, str(exc))
                continue
            failed.append(_fail(runtime, slack, note_id, f"{exc} (after {attempts} tries)"))
            continue
        except SourceError as exc:
            failed.append(_fail(runtime, slack, note_id, str(exc)))
            continue
        with runtime.writing() as session:
            session.execute(
                update(CrmNote)
                .where(CrmNote.id == note_id, CrmNote.state == "writing")
                .values(state="written", crm_note_id=crm_note_id, written_at=runtime.clock.now())
            )
        written += 1
    return written, failed


def flush(
    runtime: Runtime, crms: dict[str, OpenCrm], slack: SlackOut | None = None
) -> tuple[int, list[str]]:
    """What the sweep runs: stale claims ended, new events queued, due notes written, for every
    CRM with a token. A CRM that cannot be opened waits for the next sweep."""
    if not runtime.settings.crm_log_activity or not crms:
        return 0, []
    _end_stale_claims(runtime, slack)
    written, failed = 0, []
    for name, open_crm in crms.items():
        with runtime.writing() as session:
            enqueue(session, name, runtime.clock.now())
        if not _any_due(runtime, name):
            continue
        try:
            with open_crm() as crm:
                done, refused = write_due(runtime, name, crm, slack)
        except SourceError as exc:
            log.error("CRM notes of %s not written: %s", name, exc)
            failed.append(f"{name}: {exc}")
            continue
        written += done
        failed += refused
    return written, failed


# --- Steps ---------------------------------------------------------------------------------------


def _any_due(runtime: Runtime, source: str) -> bool:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(CrmNote.id)
                .where(
                    CrmNote.source == source,
                    CrmNote.state == "pending",
                    CrmNote.next_try_at <= runtime.clock.now(),
                )
                .limit(1)
            )
            is not None
        )


def _claim(runtime: Runtime, source: str) -> tuple[int, str, str, int] | None:
    """The oldest due note, now `writing` (committed); None when none is due."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        candidates = session.scalars(
            select(CrmNote)
            .where(
                CrmNote.source == source,
                CrmNote.state == "pending",
                CrmNote.next_try_at <= now,
            )
            .order_by(CrmNote.id)
            .limit(5)
        ).all()
        for note in candidates:
            claimed = session.execute(
                update(CrmNote)
                .where(CrmNote.id == note.id, CrmNote.state == "pending")
                .values(state="writing", attempts=CrmNote.attempts + 1, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return note.id, note.crm_id, note.body, note.attempts + 1
    return None


def _again(runtime: Runtime, note_id: int, attempts: int, error: str) -> None:
    with runtime.writing() as session:
        session.execute(
            update(CrmNote)
            .where(CrmNote.id == note_id, CrmNote.state == "writing")
            .values(
                state="pending",
                next_try_at=runtime.clock.now() + backoff(attempts),
                last_error=error[:1000],
            )
        )
    log.warning("CRM note %s not written yet, tried again later: %s", note_id, error)


def _fail(runtime: Runtime, slack: SlackOut | None, note_id: int, error: str) -> str:
    now = runtime.clock.now()
    with runtime.writing() as session:
        note = session.get(CrmNote, note_id)
        assert note is not None
        note.state, note.last_error = "failed", error[:1000]
        audit.record(
            session,
            now,
            "crm_note.failed",
            customer_id=note.customer_id,
            payload={"source": note.source, "note": note_id, "error": error[:300]},
        )
        line = f"{note.source}:{note.crm_id}: {error}"
        customer = session.get(Customer, note.customer_id)
        name = customer.name if customer else note.crm_id
    log.error("CRM note %s given up: %s", note_id, error)
    _tell(runtime, slack, name, f"was not written: {error}")
    return line


def _end_stale_claims(runtime: Runtime, slack: SlackOut | None) -> None:
    """A note left `writing` past the lease may be in the CRM already: `unknown`, never again."""
    now = runtime.clock.now()
    told: list[str] = []
    with runtime.writing() as session:
        stale = session.scalars(
            select(CrmNote).where(
                CrmNote.state == "writing", CrmNote.claimed_at < now - CLAIM_LEASE
            )
        ).all()
        for note in stale:
            note.state = "unknown"
            audit.record(
                session,
                now,
                "crm_note.unknown",
                customer_id=note.customer_id,
                payload={"source": note.source, "note": note.id},
            )
            customer = session.get(Customer, note.customer_id)
            told.append(customer.name if customer else note.crm_id)
    for name in told:
        _tell(
            runtime,
            slack,
            name,
            "may not have been written (arbot stopped while writing it); check the company's "
            "timeline in the CRM and add it by hand if it is missing: arbot will not write it "
            "again",
        )


def _tell(runtime: Runtime, slack: SlackOut | None, customer: str, what: str) -> None:
    channel = runtime.settings.finance_channel
    if slack is None or not channel:
        return
    try:
        slack.post_text(channel, mrkdwn(":memo: The CRM note for ", customer, f" {what}"[:2500]))
    except Exception:  # the note's state and the event say it; the log keeps the rest
        log.exception("CRM note problem for %s not posted to Slack", customer)
