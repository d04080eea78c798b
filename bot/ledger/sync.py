"""`arbot sync`: pull what changed in each connected accounting source since the last sync into
the ledger, with the same upsert rules as the CSV import, then write a note of each reminder sent
since into the invoice's history in the source, so the ledger stays the one source of truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.errors import UserError
from bot.core.locks import held_alone
from bot.core.models import Contact, Event, Invoice, Reminder, ReminderInvoice, SyncState
from bot.core.runtime import Runtime
from bot.ledger import crm_notes
from bot.ledger.crm import CrmMergeSummary, merge_crm
from bot.ledger.sync_failures import FAILING, HOLDING
from bot.ledger.upsert import ImportSummary, apply_batch, skipped_records
from integrations.base.ledger import (
    CrmSource,
    IncrementalSource,
    InvoiceNotes,
    LedgerBatch,
    RefetchingSource,
    SourceProblem,
)
from integrations.errors import SourceError

log = logging.getLogger(__name__)

# Records a sync skipped (each named in a problem) are fetched again by the next sync: by their
# ids where the source can (RefetchingSource), up to AGAIN_AT_MOST of them, and the cursor moves
# on; else the sync keeps the cursor it fetched from, for at most CURSOR_KEPT_AT_MOST syncs in a
# row (a day of hourly syncs), after which it moves on and a record skipped comes again once it
# is changed in the source.
AGAIN_AT_MOST = 1000
CURSOR_KEPT_AT_MOST = 24
SKIPPED = "skipped"  # in the sync state's summary: the records skipped, {kind: [id, ...]}
CURSOR_KEPT = "cursor_kept"  # and how many syncs in a row kept their cursor for them
# what the next sync does about the records this one skipped
Refetch = Literal["", "by_id", "from_cursor", "cursor_moved"]


class Source(IncrementalSource, InvoiceNotes, Protocol):
    pass


@dataclass
class SyncResult:
    source: str
    summary: ImportSummary
    problems: list[SourceProblem] = field(default_factory=list)
    notes_written: int = 0
    notes_failed: list[str] = field(default_factory=list)
    skipped_next: Refetch = ""


class SyncRunning(UserError):
    """Another sync of the same source is reading it or writing what it read."""

    def __init__(self, source: str) -> None:
        super().__init__(
            f"another sync of {source} is running (the scheduler's, or another `arbot sync`), "
            "so this one read and changed nothing; the ledger has that sync's changes once it "
            "ends: run `arbot sync` again then to bring in anything newer"
        )


def sync_source(runtime: Runtime, source: Source) -> SyncResult:
    """One sync of `source`, alone: two at once could each read the source and the one that read
    earlier could write last, taking the ledger back (a paid invoice reopened), and both would
    write the same notes. So the second is refused (SyncRunning) while the first runs."""
    with held_alone(runtime.engine, f"arbot sync {source.name}") as alone:
        if not alone:
            raise SyncRunning(source.name)
        return _sync(runtime, source)


def _sync(runtime: Runtime, source: Source) -> SyncResult:
    with runtime.sessions() as session:
        state = session.get(SyncState, source.name)
        cursor = state.cursor if state else None
        notes_since = _notes_since(state)
        before: dict[str, Any] = dict(state.summary or {}) if state else {}
    skipped_before: dict[str, list[str]] = before.get(SKIPPED) or {}
    # outside any transaction: the network may be slow
    if isinstance(source, RefetchingSource) and skipped_before:
        batch = source.fetch_since_and_again(cursor, skipped_before)
    else:
        batch = source.fetch_since(cursor)
    now = runtime.clock.now()
    with runtime.writing() as session:
        summary = apply_batch(session, batch, now)
        skipped = _by_kind(batch)
        saved, kept, skipped_next = _next_cursor(source, batch, cursor, skipped, before)
        # a record skipped again, fetched again unchanged, was said when first skipped
        told = {(kind, external_id) for kind, ids in skipped_before.items() for external_id in ids}
        for problem in batch.problems:
            if (problem.kind, problem.external_id) in told:
                continue
            audit.record(
                session,
                now,
                "sync.problem",
                payload={
                    "source": source.name,
                    "kind": problem.kind,
                    "id": problem.external_id,
                    "message": problem.message,
                },
            )
        remembered = {
            **({SKIPPED: skipped} if skipped else {}),
            **({CURSOR_KEPT: kept} if kept else {}),
        }
        _save_state(session, source.name, saved, now, summary, batch.problems, remembered)
    result = SyncResult(source.name, summary, list(batch.problems), skipped_next=skipped_next)
    _write_notes(runtime, source, notes_since, now, result)
    return result


def _by_kind(batch: LedgerBatch) -> dict[str, list[str]]:
    """The records the batch skipped, each kind's ids in order."""
    skipped: dict[str, list[str]] = {}
    for kind, external_id in sorted(filter(lambda key: key[1], skipped_records(batch))):
        skipped.setdefault(kind, []).append(str(external_id))
    return skipped


def _next_cursor(
    source: Source,
    batch: LedgerBatch,
    cursor: str | None,
    skipped: dict[str, list[str]],
    before: dict[str, Any],
) -> tuple[str | None, int, Refetch]:
    """The cursor to save, how many syncs in a row have now kept theirs for records skipped, and
    what the next sync does about them. A batch without a cursor (a full answer whose voids were
    held, bot/ledger/deleted_invoices.py) keeps the one it fetched from."""
    if batch.cursor is None:
        return cursor, 0, "from_cursor" if skipped else ""
    if not skipped:
        return batch.cursor, 0, ""
    count = sum(map(len, skipped.values()))
    if isinstance(source, RefetchingSource) and count <= AGAIN_AT_MOST:
        return batch.cursor, 0, "by_id"
    kept = int(before.get(CURSOR_KEPT, 0)) + 1
    if kept > CURSOR_KEPT_AT_MOST:
        return batch.cursor, 0, "cursor_moved"
    return cursor, kept, "from_cursor"


def _notes_since(state: SyncState | None) -> int:
    """The last `reminder.sent` event already noted (ids only grow; instants can tie)."""
    return int((state.summary or {}).get("notes_after_event", 0)) if state else 0


def _save_state(
    session: Session,
    name: str,
    cursor: str | None,
    now: datetime,
    summary: ImportSummary,
    problems: list[SourceProblem],
    remembered: dict[str, Any],
) -> None:
    state = session.get(SyncState, name)
    if state is None:
        state = SyncState(source=name, summary={})
        session.add(state)
    previous: dict[str, Any] = dict(state.summary or {})
    state.cursor, state.synced_at = cursor, now
    state.summary = {
        **summary.as_dict(),
        "problems": [p.message for p in problems][:100],
        "notes_after_event": previous.get("notes_after_event", 0),
        **remembered,
    }
    for told in (FAILING, HOLDING):  # told as over by bot.ledger.sync_failures, after this sync
        if told in previous:
            state.summary[told] = previous[told]


def _write_notes(
    runtime: Runtime, source: Source, since: int, now: datetime, result: SyncResult
) -> None:
    """One note per sent reminder per invoice of this source, for events after `since`."""
    with runtime.sessions() as session:
        last = session.scalar(select(func.max(Event.id))) or 0
        query = (
            select(Event.at, Reminder, Invoice.external_id, Contact.email, Contact.phone)
            .join(Reminder, Reminder.id == Event.reminder_id)
            .join(ReminderInvoice, ReminderInvoice.reminder_id == Reminder.id)
            .join(Invoice, Invoice.id == ReminderInvoice.invoice_id)
            .outerjoin(Contact, Contact.id == Reminder.contact_id)
            .where(
                Event.kind == "reminder.sent",
                Invoice.source == source.name,
                Event.id > since,
                Event.id <= last,
            )
            .order_by(Event.id)
        )
        rows = session.execute(query).all()
    for at, reminder, external_id, email, phone in rows:
        to = email if reminder.channel == "email" else phone
        note = (
            f"{at:%Y-%m-%d}: payment reminder ({reminder.step_key}) sent by "
            f"{reminder.channel} to {to or 'the billing contact'} from arbot"
        )
        try:
            source.add_note(external_id, note)
            result.notes_written += 1
        except SourceError as exc:  # a note is a courtesy: the sync itself stands
            log.warning("note for invoice %s not written: %s", external_id, exc)
            result.notes_failed.append(f"{external_id}: {exc}")
    with runtime.writing() as session:
        state = session.get(SyncState, source.name)
        if state is not None:
            state.summary = {**(state.summary or {}), "notes_after_event": last}


@dataclass
class CrmSyncResult:
    source: str
    summary: CrmMergeSummary
    problems: list[SourceProblem] = field(default_factory=list)
    activities_logged: int = 0
    activities_failed: list[str] = field(default_factory=list)


def sync_crm(runtime: Runtime, source: CrmSource, log_activity: bool) -> CrmSyncResult:
    """CRM context into the customers (see bot/ledger/crm.py), then, when asked, each reminder
    sent and escalation opened since the last sync queued as a note on the CRM company and the
    due notes written (bot/ledger/crm_notes.py; the scheduler's sweep writes them too). Alone,
    as sync_source is: two at once could each read the CRM and the one that read earlier could
    write last, putting an older tier or owner back, and both would queue the same notes. So
    the second is refused (SyncRunning) while the first runs."""
    with held_alone(runtime.engine, f"arbot sync {source.name}") as alone:
        if not alone:
            raise SyncRunning(source.name)
        return _sync_crm(runtime, source, log_activity)


def _sync_crm(runtime: Runtime, source: CrmSource, log_activity: bool) -> CrmSyncResult:
    settings = runtime.settings
    with runtime.sessions() as session:
        state = session.get(SyncState, source.name)
        cursor = state.cursor if state else None
        latest = session.scalar(select(func.max(Event.id))) or 0
        # The first sync notes what happens from now on, not the whole history at once; with
        # notes off, nothing waits to be noted when they are turned on.
        marker = (state.summary or {}).get(crm_notes.MARKER, latest) if state else latest
        if not log_activity:
            marker = latest
    batch = source.fetch_accounts(cursor)  # outside any transaction: the network may be slow
    now = runtime.clock.now()
    with runtime.writing() as session:
        summary = merge_crm(session, batch, settings.crm_match_by, dict(settings.owner_emails), now)
        state = session.get(SyncState, source.name)
        if state is None:
            state = SyncState(source=source.name, summary={})
            session.add(state)
        state.cursor, state.synced_at = batch.cursor or cursor, now
        previous: dict[str, Any] = dict(state.summary or {})
        state.summary = {
            **summary.as_dict(),
            "problems": [p.message for p in batch.problems][:100],
            crm_notes.MARKER: marker,
        }
        if FAILING in previous:  # told as over by bot.ledger.sync_failures, after this sync
            state.summary[FAILING] = previous[FAILING]
    result = CrmSyncResult(source.name, summary, list(batch.problems))
    if log_activity:
        with runtime.writing() as session:
            crm_notes.enqueue(session, source.name, runtime.clock.now())
        written, failed = crm_notes.write_due(runtime, source.name, source)
        result.activities_logged += written
        result.activities_failed += failed
    return result
