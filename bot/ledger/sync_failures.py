"""A sync that fails is told to the finance channel once, and its recovery once.

Until a source syncs again, the plan and the reminders work from the ledger as of its last sync:
an invoice paid in the source since may still be reminded. So the first failure a person must act
on (the source refused arbot's grant: `arbot connect <source>` again), or any failure lasting
LASTING, is posted with what failed, why and what to do, and kept in the audit log
(`sync.failed`); when the source syncs again, that is posted too (`sync.recovered`). The failure
is kept in the source's `sync_state` summary (`failing`) between runs, so each is told once
however often the sync runs, and by one replica: the read and the write are one transaction under
the source's lock (BEGIN IMMEDIATE on SQLite). Until then the plan header says the ledger may be
out of date (`stale_sources`). A CRM's sync (HubSpot, Pipedrive) failing is told the same way,
under its name: customers keep the tier, owner and billing contact of its last sync, and the
plan header says nothing of it, the ledger being up to date.

So is a full sync that voided none of the invoices its answer lacked, because it lacked too many
(bot/ledger/deleted_invoices.py): told once with the count and what to check, kept in the source's
summary (`holding_voids`) while each sync finds the same, and its end told once (`sync.voids_held`,
`sync.voids_released`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.locks import schema_lock
from bot.core.models import Invoice, SyncState
from bot.core.runtime import Runtime
from bot.ledger.upsert import ImportSummary
from integrations.base.mrkdwn import Mrkdwn, mrkdwn
from integrations.base.slack import SlackPort
from integrations.errors import ReconnectNeeded, SlackFailed, SourceError

log = logging.getLogger(__name__)

FAILING = "failing"  # the key in SyncState.summary: {"since", "reason", "told"}
HOLDING = "holding_voids"  # the key in SyncState.summary: {"since", "count", "told"}
LASTING = timedelta(hours=2)  # a failure that may pass by itself is told once it lasts this long
LABELS = {"quickbooks": "QuickBooks", "xero": "Xero", "freshbooks": "FreshBooks"}
CRMS = {"hubspot": "HubSpot", "pipedrive": "Pipedrive"}  # no invoices: tiers, owners, contacts


def sync_failed(runtime: Runtime, source: str, error: SourceError, slack: SlackPort | None) -> None:
    """Keep the failure; tell the finance channel when it is the first to tell."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        schema_lock(session, _lock(source))
        state = session.get(SyncState, source)
        if state is None:
            state = SyncState(source=source, summary={})
            session.add(state)
        summary: dict[str, Any] = dict(state.summary or {})
        failing: dict[str, Any] = dict(summary.get(FAILING) or {})
        since = datetime.fromisoformat(failing["since"]) if failing else now
        failing.update(since=since.isoformat(), reason=str(error))
        told = bool(failing.get("told"))
        tell = not told and (isinstance(error, ReconnectNeeded) or now - since >= LASTING)
        failing["told"] = told or tell
        if tell:  # what the plan header says until the source syncs again
            failing["header"] = _header_line(runtime, source, error, state.synced_at)
        state.summary = {**summary, FAILING: failing}
        last_synced = state.synced_at
        if tell:
            audit.record(
                session,
                now,
                "sync.failed",
                payload={"source": source, "reason": str(error), "since": since.isoformat()},
            )
    if tell and not _post(runtime, slack, _failure_text(runtime, source, error, last_synced)):
        _untold(runtime, source)  # the next run tells it


def sync_succeeded(runtime: Runtime, source: str, slack: SlackPort | None) -> None:
    """Forget a failure; tell the finance channel when the failure had been told."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        schema_lock(session, _lock(source))
        state = session.get(SyncState, source)
        if state is None or not (state.summary or {}).get(FAILING):
            return
        summary = dict(state.summary)
        failing = summary.pop(FAILING)
        state.summary = summary
        if failing.get("told"):
            audit.record(
                session,
                now,
                "sync.recovered",
                payload={"source": source, "failing_since": failing.get("since")},
            )
    if failing.get("told"):
        _post(
            runtime,
            slack,
            mrkdwn(
                f":white_check_mark: {_label(source)} syncs again (it had failed since "
                f"{_local(runtime, datetime.fromisoformat(failing['since']))}): the ledger is "
                "up to date with it."
            ),
        )


def voids_held(
    runtime: Runtime, source: str, summary: ImportSummary, slack: SlackPort | None
) -> None:
    """After a sync: tell the finance channel when it first held the voids of invoices its full
    answer lacked, and when a sync after it no longer did."""
    now = runtime.clock.now()
    held = len(summary.voids_held)
    with runtime.writing() as session:
        schema_lock(session, _lock(source))
        state = session.get(SyncState, source)
        if state is None:
            return
        kept: dict[str, Any] = dict(state.summary or {})
        holding: dict[str, Any] = dict(kept.get(HOLDING) or {})
        tell = bool(held) and not holding.get("told")
        over = not held and bool(holding)
        if tell:
            since = holding.get("since") or now.isoformat()
            kept[HOLDING] = {"since": since, "count": held, "told": True}
            audit.record(session, now, "sync.voids_held", payload={"source": source, "count": held})
        elif over:
            kept.pop(HOLDING)
            payload = {"source": source, "held_since": holding.get("since")}
            audit.record(session, now, "sync.voids_released", payload=payload)
        state.summary = kept
        stored = session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.source == source, Invoice.status == "open")
        )
    if tell and not _post(runtime, slack, _held_text(source, summary, held, stored or 0)):
        with runtime.writing() as session:  # the next sync that holds tells it
            schema_lock(session, _lock(source))
            state = session.get(SyncState, source)
            if state is not None and (state.summary or {}).get(HOLDING):
                state.summary = {
                    **state.summary,
                    HOLDING: {**state.summary[HOLDING], "told": False},
                }
    if over and holding.get("told"):
        voided = len(summary.invoices_voided)
        _post(
            runtime,
            slack,
            mrkdwn(
                f":white_check_mark: {summary.label} answers in full again: arbot kept following "
                "up the invoices it had lacked; ",
                f"{voided} invoice(s) it no longer has were voided as deleted there.",
            ),
        )


def _held_text(source: str, summary: ImportSummary, held: int, stored: int) -> Mrkdwn:
    label = _label(source)
    shown = ", ".join(summary.voids_held[:10]) + (", …" if held > 10 else "")
    return mrkdwn(
        f":warning: A full sync of {summary.label} lacked {held} of the {stored} open invoices "
        f"stored from {label} ({shown}), too many to be deletions: arbot voided none of them and "
        "goes on following them up. ",
        f"Please check that arbot is connected to the right company (`arbot connect {source}` "
        f"to connect another) and that these invoices are still in {label}. ",
        f"Each sync reads all of {label} again and checks again; arbot says here when its answer "
        "is whole. ",
        f"If they really were deleted in {label}, arbot cannot tell that from a wrong answer and "
        "goes on holding them: pause their customers' reminders (`/ar pause CUSTOMER 30d deleted "
        f"in {label}`, which pauses all of that customer's) so that none is chased; arbot voids "
        "them by itself once they are few enough to be deletions (two at most, or at most half "
        "of the open invoices and, past ten, at most 10% of them).",
    )


def stale_sources(session: Session) -> list[str]:
    """For the plan header: each ledger source whose failure was told, since when and why (a
    CRM's leaves the ledger as it is: its failure is told in the channel and by /healthz)."""
    lines = []
    query = select(SyncState).where(SyncState.source.not_in(CRMS)).order_by(SyncState.source)
    for state in session.scalars(query):
        failing = (state.summary or {}).get(FAILING) or {}
        if failing.get("told") and failing.get("header"):
            lines.append(str(failing["header"]))
    return lines


def _header_line(
    runtime: Runtime, source: str, error: SourceError, last_synced: datetime | None
) -> str:
    since = f"since {_local(runtime, last_synced)}" if last_synced else "yet"
    return f"{_label(source)} has not synced {since}: {error}"


def _failure_text(
    runtime: Runtime, source: str, error: SourceError, last_synced: datetime | None
) -> Mrkdwn:
    label = _label(source)
    if source in CRMS:
        as_of = f"at its last sync ({_local(runtime, last_synced)})" if last_synced else "yet"
        until = (
            f". Until it syncs again, customers keep the tier, account owner and billing contact "
            f"{label} gave them {as_of}, so a change made in {label} since is not followed. "
        )
    else:
        as_of = f"as of its last sync ({_local(runtime, last_synced)})" if last_synced else "empty"
        until = (
            f". Until it syncs again, the plan and the reminders work from the ledger {as_of}, "
            f"so an invoice paid in {label} since may still be reminded. "
        )
    return mrkdwn(
        f":warning: Syncing {label} failed: ",
        str(error),
        until,
        f"Please fix it (then run `arbot sync`); arbot says here when {label} syncs again.",
    )


def _post(runtime: Runtime, slack: SlackPort | None, text: Mrkdwn) -> bool:
    """False when Slack refused it or could not be reached; True too when there is no Slack."""
    channel = runtime.settings.finance_channel
    if slack is None or not channel:
        log.warning("a sync notice not posted (no Slack or ARBOT_FINANCE_CHANNEL): %s", text)
        return True
    try:
        slack.post_text(channel, text)
    except SlackFailed as exc:
        log.error("could not tell the finance channel about a sync: %s", exc.error)
        return False
    return True


def _untold(runtime: Runtime, source: str) -> None:
    with runtime.writing() as session:
        schema_lock(session, _lock(source))
        state = session.get(SyncState, source)
        if state is not None and (state.summary or {}).get(FAILING):
            state.summary = {**state.summary, FAILING: {**state.summary[FAILING], "told": False}}


def _lock(source: str) -> str:
    return f"arbot sync state {source}"


def _label(source: str) -> str:
    return LABELS.get(source) or CRMS.get(source) or source


def _local(runtime: Runtime, at: datetime) -> str:
    zone = runtime.settings.timezone
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
