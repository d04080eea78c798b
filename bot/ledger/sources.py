"""Syncing every connected accounting source, shared by `arbot sync` and the scheduler: each
source (opened by the caller, from integrations/wiring.py), one sync each, then what the changes mean outside the ledger
(no payment link may take an old amount; the cards of cancelled reminders are re-drawn)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from bot.core.models import SourceToken
from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.ledger.source_tokens import DatabaseTokenStore
from bot.ledger.sync import (
    CrmSyncResult,
    Source,
    SyncResult,
    SyncRunning,
    sync_crm,
    sync_source,
)
from bot.ledger.sync_failures import sync_failed, sync_succeeded, voids_held
from bot.ledger.upsert import ImportSummary
from bot.payments import links as payment_links
from bot.planning import posting
from integrations.base.ledger import CrmSource, TokenStore
from integrations.base.payments import PaymentLinks
from integrations.errors import SlackFailed, SourceError

log = logging.getLogger(__name__)


@dataclass
class SyncAll:
    results: list[SyncResult] = field(default_factory=list)
    crm: list[CrmSyncResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<source>: <what went wrong>"
    busy: list[str] = field(default_factory=list)  # "<source>: <another sync is running>"
    connected: int = 0  # accounting sources and CRMs


OpenSource = Callable[
    [str, str, TokenStore, Callable[[], datetime]], AbstractContextManager[Source]
]
OpenCrm = Callable[[], AbstractContextManager[CrmSource]]


def sync_all(
    runtime: Runtime,
    slack: SlackOut | None,
    *,
    open_source: OpenSource,
    crms: dict[str, OpenCrm],
    links: PaymentLinks | None,
) -> SyncAll:
    """One sync of each connected source and each CRM; a failing one does not stop the others.
    `open_source(name, tenant_id, tokens, now)` opens a connected accounting source (built in
    integrations/wiring.py), `crms` the CRMs with a token set."""
    with runtime.sessions() as session:
        connected = list(session.execute(select(SourceToken.provider, SourceToken.tenant_id)))
    done = SyncAll(connected=len(connected))
    tokens = DatabaseTokenStore(runtime) if connected else None
    for name, tenant_id in connected:
        assert tokens is not None
        try:
            with open_source(name, tenant_id or "", tokens, runtime.clock.now) as source:
                result = sync_source(runtime, source)
        except SyncRunning as exc:  # not a failure: the sync running brings the changes
            log.warning("sync of %s not run: %s", name, exc)
            done.busy.append(f"{name}: {exc}")
            continue
        except SourceError as exc:
            log.error("sync of %s failed: %s", name, exc)
            done.failed.append(f"{name}: {exc}")
            sync_failed(runtime, name, exc, slack)
            continue
        sync_succeeded(runtime, name, slack)
        voids_held(runtime, name, result.summary, slack)
        after_sync(runtime, result.summary, slack, links)
        done.results.append(result)
    for name, open_crm in crms.items():
        done.connected += 1
        try:
            with open_crm() as crm:
                crm_result = sync_crm(runtime, crm, runtime.settings.crm_log_activity)
        except SyncRunning as exc:  # not a failure: the sync running brings the changes
            log.warning("sync of %s not run: %s", name, exc)
            done.busy.append(f"{name}: {exc}")
            continue
        except SourceError as exc:
            log.error("sync of %s failed: %s", name, exc)
            done.failed.append(f"{name}: {exc}")
            sync_failed(runtime, name, exc, slack)
            continue
        sync_succeeded(runtime, name, slack)
        done.crm.append(crm_result)
    return done


def after_sync(
    runtime: Runtime, summary: ImportSummary, slack: SlackOut | None, links: PaymentLinks | None
) -> None:
    """What the sync changed, told after its commit: no payment link may take an old amount (the
    processor is called with no transaction open), and the cancelled reminders' cards redrawn."""
    payment_links.retire(runtime, links, summary.changed_invoice_ids)
    if slack is not None and summary.cancelled_reminders:
        try:  # the ledger is right; the cards catch up at the next change, and other sources go on
            with runtime.sessions() as session:
                posting.refresh(
                    session, slack, summary.cancelled_reminders, runtime.settings.timezone
                )
        except SlackFailed as exc:
            log.error("cards not redrawn after a sync: %s", exc.error)
