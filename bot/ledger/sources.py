"""Syncing every connected accounting source, shared by `arbot sync` and the scheduler: each
source's OAuth client and adapter, one sync each, then what the changes mean outside the ledger
(no payment link may take an old amount; the cards of cancelled reminders are re-drawn)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from bot.core.errors import UserError
from bot.core.models import SourceToken
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.escalations.notes import SlackOut
from bot.ledger.source_tokens import DatabaseTokenStore
from bot.ledger.sync import CrmSyncResult, Source, SyncResult, sync_crm, sync_source
from bot.ledger.upsert import ImportSummary
from bot.payments import links as payment_links
from bot.planning import posting
from integrations.base import CrmSource
from integrations.errors import SourceError
from integrations.freshbooks import FreshBooksSource
from integrations.hubspot import HubSpotSource
from integrations.oauth import Provider, freshbooks_provider, quickbooks_provider, xero_provider
from integrations.oauth_client import OAuthClient
from integrations.pipedrive import PipedriveSource
from integrations.quickbooks import QuickBooksSource
from integrations.stripe_links import links_from
from integrations.xero import XeroSource

log = logging.getLogger(__name__)
SOURCES = ("quickbooks", "xero", "freshbooks")


@dataclass
class SyncAll:
    results: list[SyncResult] = field(default_factory=list)
    crm: list[CrmSyncResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<source>: <what went wrong>"
    connected: int = 0  # accounting sources and CRMs


_PROVIDERS: dict[str, Callable[[str, str, str, str], Provider]] = {
    "quickbooks": quickbooks_provider,
    "xero": xero_provider,
    "freshbooks": freshbooks_provider,
}


def provider_for(settings: Settings, name: str) -> Provider:
    """The OAuth provider of a source, from its settings (`<SOURCE>_CLIENT_ID`, ...)."""
    make = _PROVIDERS.get(name)
    if make is None:
        raise UserError(f"unknown source {name!r}: choose one of {', '.join(SOURCES)}")
    client_id = getattr(settings, f"{name}_client_id")
    secret = getattr(settings, f"{name}_client_secret")
    if not (client_id and secret):
        prefix = name.upper()
        raise UserError(f"set {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET first")
    return make(
        client_id,
        secret.get_secret_value(),
        getattr(settings, f"{name}_authorize_url"),
        getattr(settings, f"{name}_token_url"),
    )


def source_for(runtime: Runtime, name: str, tenant_id: str, client: OAuthClient) -> Source:
    settings = runtime.settings
    if name == "quickbooks":
        return QuickBooksSource(
            client,
            tenant_id,
            api_url=settings.quickbooks_api_url,
            phone_region=settings.phone_region,
        )
    if name == "freshbooks":
        return FreshBooksSource(
            client,
            tenant_id,
            api_url=settings.freshbooks_api_url,
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
    for name, make in crm_sources(runtime.settings).items():
        done.connected += 1
        http = httpx.Client(timeout=30)
        try:
            done.crm.append(sync_crm(runtime, make(http), runtime.settings.crm_log_activity))
        except SourceError as exc:
            log.error("sync of %s failed: %s", name, exc)
            done.failed.append(f"{name}: {exc}")
        finally:
            http.close()
    return done


def crm_sources(settings: Settings) -> dict[str, Callable[[httpx.Client], CrmSource]]:
    """The CRMs with a token set, each as a function of the HTTP client it should use."""
    common: dict[str, Any] = {
        "tier_property": settings.crm_tier_property,
        "tags_property": settings.crm_tags_property,
        "id_property": settings.crm_id_property,
        "phone_region": settings.phone_region,
    }
    found: dict[str, Callable[[httpx.Client], CrmSource]] = {}
    if settings.hubspot_token is not None:
        token, url = settings.hubspot_token.get_secret_value(), settings.hubspot_api_url
        found["hubspot"] = lambda http: HubSpotSource(http, token, api_url=url, **common)
    if settings.pipedrive_token is not None:
        key, base = settings.pipedrive_token.get_secret_value(), settings.pipedrive_api_url
        found["pipedrive"] = lambda http: PipedriveSource(http, key, api_url=base, **common)
    return found


def after_sync(runtime: Runtime, summary: ImportSummary, slack: SlackOut | None) -> None:
    settings = runtime.settings
    key = settings.stripe_api_key
    links = links_from(key.get_secret_value() if key else None, settings.stripe_api_base)
    with runtime.writing() as session:
        payment_links.retire(session, links, summary.changed_invoice_ids, runtime.clock.now())
        if slack is not None and summary.cancelled_reminders:
            posting.refresh(session, slack, summary.cancelled_reminders, settings.timezone)
