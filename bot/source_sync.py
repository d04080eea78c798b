"""Syncing every connected accounting source, shared by `arbot sync` and the scheduler: each
source's OAuth client and adapter, one sync each, then what the changes mean outside the ledger
(no payment link may take an old amount; the cards of cancelled reminders are re-drawn)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from bot import payment_links, plan_posting
from bot.errors import UserError
from bot.followups import SlackOut
from bot.ledger import ImportSummary
from bot.models import SourceToken
from bot.runtime import Runtime
from bot.settings import Settings
from bot.source_tokens import DatabaseTokenStore
from bot.sync import Source, SyncResult, sync_source
from integrations.oauth import Provider, SourceError, quickbooks_provider, xero_provider
from integrations.oauth_client import OAuthClient
from integrations.quickbooks import QuickBooksSource
from integrations.stripe_links import links_from
from integrations.xero import XeroSource

log = logging.getLogger(__name__)
SOURCES = ("quickbooks", "xero")


@dataclass
class SyncAll:
    results: list[SyncResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<source>: <what went wrong>"
    connected: int = 0


def provider_for(settings: Settings, name: str) -> Provider:
    if name == "quickbooks":
        client_id, secret = settings.quickbooks_client_id, settings.quickbooks_client_secret
        if not (client_id and secret):
            raise UserError("set QUICKBOOKS_CLIENT_ID and QUICKBOOKS_CLIENT_SECRET first")
        return quickbooks_provider(
            client_id,
            secret.get_secret_value(),
            settings.quickbooks_authorize_url,
            settings.quickbooks_token_url,
        )
    if name == "xero":
        client_id, secret = settings.xero_client_id, settings.xero_client_secret
        if not (client_id and secret):
            raise UserError("set XERO_CLIENT_ID and XERO_CLIENT_SECRET first")
        return xero_provider(
            client_id,
            secret.get_secret_value(),
            settings.xero_authorize_url,
            settings.xero_token_url,
        )
    raise UserError(f"unknown source {name!r}: choose one of {', '.join(SOURCES)}")


def source_for(runtime: Runtime, name: str, tenant_id: str, client: OAuthClient) -> Source:
    settings = runtime.settings
    if name == "quickbooks":
        return QuickBooksSource(
            client,
            tenant_id,
            api_url=settings.quickbooks_api_url,
            phone_region=settings.phone_region,
        )
    return XeroSource(
        client, tenant_id, api_url=settings.xero_api_url, phone_region=settings.phone_region
    )


def sync_all(runtime: Runtime, slack: SlackOut | None) -> SyncAll:
    """One sync of each connected source; a failing source does not stop the others."""
    with runtime.sessions() as session:
        connected = list(session.execute(select(SourceToken.provider, SourceToken.tenant_id)))
    done = SyncAll(connected=len(connected))
    for name, tenant_id in connected:
        client = OAuthClient(
            provider_for(runtime.settings, name), DatabaseTokenStore(runtime), runtime.clock.now
        )
        try:
            result = sync_source(runtime, source_for(runtime, name, tenant_id or "", client))
        except SourceError as exc:
            log.error("sync of %s failed: %s", name, exc)
            done.failed.append(f"{name}: {exc}")
            continue
        finally:
            client.close()
        after_sync(runtime, result.summary, slack)
        done.results.append(result)
    return done


def after_sync(runtime: Runtime, summary: ImportSummary, slack: SlackOut | None) -> None:
    settings = runtime.settings
    key = settings.stripe_api_key
    links = links_from(key.get_secret_value() if key else None, settings.stripe_api_base)
    with runtime.writing() as session:
        payment_links.retire(session, links, summary.changed_invoice_ids, runtime.clock.now())
        if slack is not None and summary.cancelled_reminders:
            plan_posting.refresh(session, slack, summary.cancelled_reminders, settings.timezone)
