"""CLI commands for the accounting sources: `arbot connect quickbooks|xero` (OAuth 2.0, the
tokens stored encrypted) and `arbot sync` (everything changed since the last sync)."""

from __future__ import annotations

import secrets
import sys
from dataclasses import replace
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from bot import payment_links, plan_posting
from bot.errors import UserError
from bot.models import SourceToken
from bot.runtime import Runtime, start
from bot.settings import Settings, load_settings
from bot.source_tokens import DatabaseTokenStore
from bot.sync import Source, sync_source
from integrations.oauth import (
    OAuthClient,
    Provider,
    SourceError,
    authorize_url,
    exchange_code,
    parse_redirect,
    quickbooks_provider,
    xero_provider,
)
from integrations.quickbooks import QuickBooksSource
from integrations.slack_chat import chat_from
from integrations.stripe_links import links_from
from integrations.xero import XeroSource, xero_tenants

SOURCES = ("quickbooks", "xero")


def _out() -> Console:
    return Console(highlight=False)


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


def redirect_uri(settings: Settings, name: str) -> str:
    if settings.sync_redirect_uri:
        return settings.sync_redirect_uri
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/oauth/{name}/callback"
    return "http://localhost:8765/callback"


def connect_command(
    source: Annotated[str, typer.Argument(help="quickbooks or xero")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Xero: the organisation's name or id.")
    ] = None,
) -> None:
    """Connect an accounting source: open the printed address, approve, paste back where you land."""
    runtime = start(load_settings())
    try:
        settings = runtime.settings
        if not settings.secret_key:
            raise UserError("set ARBOT_SECRET_KEY first: the tokens are stored encrypted with it")
        provider = provider_for(settings, source)
        state = secrets.token_urlsafe(24)
        uri = redirect_uri(settings, source)
        # Plain prints: the address must come out whole, never wrapped, to be copied.
        print("1. Open this address and approve arbot:")
        print(authorize_url(provider, state, uri))
        print(f"2. Your browser then goes to {uri}?code=… (the page may not load; that is fine).")
        print("3. Paste that whole address here and press Enter:", flush=True)
        pasted = sys.stdin.readline().strip()
        if not pasted:
            raise UserError("nothing was pasted: run `arbot connect` again")
        landed = parse_redirect(pasted, state)
        now = runtime.clock.now()
        if source == "quickbooks":
            if not landed.realm_id:
                raise UserError(
                    "that address has no realmId: paste the whole address, not only the code"
                )
            tokens = exchange_code(provider, landed.code, uri, now, tenant_id=landed.realm_id)
        else:
            tokens = exchange_code(provider, landed.code, uri, now)
            tenants = xero_tenants(tokens.access_token, settings.xero_api_url)
            chosen = [t for t in tenants if tenant in (None, t.tenant_id, t.name)]
            if len(chosen) != 1:
                names = ", ".join(f"{t.name} ({t.tenant_id})" for t in tenants) or "none"
                raise UserError(f"pick the organisation with --tenant; this login sees: {names}")
            tokens = replace(tokens, tenant_id=chosen[0].tenant_id)
        DatabaseTokenStore(runtime).save(source, tokens)
    finally:
        runtime.close()
    _out().print(f"Connected {provider.label} (organisation {tokens.tenant_id}). Run `arbot sync`.")


def _source(runtime: Runtime, name: str, tenant_id: str, client: OAuthClient) -> Source:
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


def sync_command() -> None:
    """Pull what changed in each connected source since the last sync into the ledger."""
    runtime = start(load_settings())
    failed = []
    try:
        with runtime.sessions() as session:
            connected = list(
                session.execute(select(SourceToken.provider, SourceToken.tenant_id)).all()
            )
        if not connected:
            raise UserError("no source is connected: run `arbot connect quickbooks` (or xero)")
        for name, tenant_id in connected:
            client = OAuthClient(
                provider_for(runtime.settings, name), DatabaseTokenStore(runtime), runtime.clock.now
            )
            try:
                result = sync_source(runtime, _source(runtime, name, tenant_id or "", client))
            except SourceError as exc:
                failed.append(f"{name}: {exc}")
                continue
            finally:
                client.close()
            _report(runtime, result.source, result)
    finally:
        runtime.close()
    if failed:
        raise UserError("; ".join(failed))


def _report(runtime: Runtime, name: str, result: object) -> None:
    from bot.sync import SyncResult

    assert isinstance(result, SyncResult)
    s = result.summary
    _out().print(
        f"{name}: {s.invoices_created} new invoice(s), {s.invoices_updated} changed "
        f"({len(s.invoices_paid)} paid, {len(s.invoices_voided)} voided, "
        f"{len(s.invoices_reopened)} reopened), {s.customers_created} new customer(s), "
        f"{s.payments_recorded} payment(s); {len(s.cancelled_reminders)} waiting reminder(s) "
        f"cancelled; {result.notes_written} note(s) written back.",
        markup=False,
    )
    for problem in result.problems:
        Console(stderr=True).print(
            f"{name}: skipped {problem.kind} {problem.external_id or ''}: {problem.message}",
            markup=False,
        )
    for failure in result.notes_failed:
        Console(stderr=True).print(f"{name}: note not written for {failure}", markup=False)
    token = runtime.settings.slack_bot_token
    slack = chat_from(token.get_secret_value() if token else None, runtime.settings.slack_api_url)
    key = runtime.settings.stripe_api_key
    links = links_from(key.get_secret_value() if key else None, runtime.settings.stripe_api_base)
    with runtime.writing() as session:
        # Invoices paid or changed in the source: no payment link may take the old amount.
        payment_links.retire(session, links, s.changed_invoice_ids, runtime.clock.now())
        if slack is not None and s.cancelled_reminders:
            plan_posting.refresh(session, slack, s.cancelled_reminders, runtime.settings.timezone)
