"""CLI commands for the accounting sources: `arbot connect quickbooks|xero|freshbooks` (OAuth 2.0,
the tokens stored encrypted) and `arbot sync` (everything changed since the last sync); and
`arbot connect gmail|microsoft365`, the mailbox's OAuth sign-in for sending and reading mail."""

from __future__ import annotations

import secrets
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from bot.core.errors import UserError
from handlers.cli.app import err, out

if TYPE_CHECKING:
    from bot.core.runtime import Runtime
    from bot.core.settings import Settings
    from bot.ledger.sync import CrmSyncResult, SyncResult
    from integrations.oauth import Provider, Redirect


def redirect_uri(settings: Settings, name: str) -> str:
    if settings.sync_redirect_uri:
        return settings.sync_redirect_uri
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/oauth/{name}/callback"
    # FreshBooks only accepts https redirect addresses; the page need not load (paste it back).
    scheme = "https" if name == "freshbooks" else "http"
    return f"{scheme}://localhost:8765/callback"


def connect_command(
    source: Annotated[
        str, typer.Argument(help="quickbooks, xero or freshbooks; gmail or microsoft365")
    ],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Xero organisation / FreshBooks business: name or id."),
    ] = None,
) -> None:
    """Connect an accounting source or the mailbox: open the printed address, approve, paste back
    where you land."""
    from bot.core.settings import load_settings
    from bot.ledger.source_tokens import DatabaseTokenStore
    from bot.workspaces.registry import open_runtime
    from integrations.freshbooks import freshbooks_accounts
    from integrations.mail_oauth import MAILBOXES
    from integrations.oauth import exchange_code
    from integrations.wiring import provider_for
    from integrations.xero import xero_tenants

    runtime = open_runtime(load_settings())
    try:
        settings = runtime.settings
        if not settings.secret_key:
            raise UserError("set ARBOT_SECRET_KEY first: the tokens are stored encrypted with it")
        if source in MAILBOXES:
            _connect_mailbox(runtime, source)
            return
        provider = provider_for(settings, source)
        uri = redirect_uri(settings, source)
        landed = _authorize(provider, uri)
        now = runtime.clock.now()
        if source == "quickbooks":
            if not landed.realm_id:
                raise UserError(
                    "that address has no realmId: paste the whole address, not only the code"
                )
            tokens = exchange_code(provider, landed.code, uri, now, tenant_id=landed.realm_id)
        elif source == "freshbooks":
            tokens = exchange_code(provider, landed.code, uri, now)
            accounts = freshbooks_accounts(tokens.access_token, settings.freshbooks_api_url)
            picked = [a for a in accounts if tenant in (None, a.account_id, a.name)]
            if len(picked) != 1:
                names = ", ".join(f"{a.name} ({a.account_id})" for a in accounts) or "none"
                raise UserError(f"pick the business with --tenant; this login sees: {names}")
            tokens = replace(tokens, tenant_id=picked[0].account_id)
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
    out().print(f"Connected {provider.label} (organisation {tokens.tenant_id}). Run `arbot sync`.")


def _authorize(provider: Provider, uri: str) -> Redirect:
    """Print the authorize link, read back the address the browser landed on."""
    from integrations.oauth import authorize_url, parse_redirect

    state = secrets.token_urlsafe(24)
    # Plain prints: the address must come out whole, never wrapped, to be copied.
    print("1. Open this address and approve arbot:")
    print(authorize_url(provider, state, uri))
    print(f"2. Your browser then goes to {uri}?code=… (the page may not load; that is fine).")
    print("3. Paste that whole address here and press Enter:", flush=True)
    pasted = sys.stdin.readline().strip()
    if not pasted:
        raise UserError("nothing was pasted: run `arbot connect` again")
    return parse_redirect(pasted, state)


def _connect_mailbox(runtime: Runtime, name: str) -> None:
    """Sign arbot in to the mailbox (Gmail, Microsoft 365): SMTP and IMAP then use XOAUTH2."""
    from integrations.mail_oauth import signed_in_as
    from integrations.mailbox_grants import MailboxGrants
    from integrations.oauth import exchange_code_signed_in
    from integrations.wiring import mailbox_address, mailbox_provider_for

    settings = runtime.settings
    provider = mailbox_provider_for(settings, name)
    address = mailbox_address(settings)
    if settings.mailbox != name:
        raise UserError(
            f"set ARBOT_MAILBOX={name} first: it picks the {provider.label} servers the sign-in is for"
        )
    print(f"Sign in as {address} (SMTP_USER, else ARBOT_FROM_EMAIL) when asked.")
    uri = redirect_uri(settings, name)
    landed = _authorize(provider, uri)
    tokens, claims = exchange_code_signed_in(provider, landed.code, uri, runtime.clock.now())
    who = signed_in_as(claims)
    if who is not None and who.casefold() != address.casefold():
        raise UserError(
            f"you signed in to {provider.label} as {who}, but arbot sends as {address} "
            f"(SMTP_USER, else ARBOT_FROM_EMAIL): run `arbot connect {name}` again and sign in as "
            f"{address}, or set SMTP_USER to {who}; nothing was stored"
        )
    MailboxGrants(runtime).connect(name, tokens)
    out().print(
        f"Connected the {provider.label} mailbox {address}: reminders are sent and replies read "
        "with this sign-in (approved reminders waiting for it go at the next send).",
        markup=False,
    )


def sync_command() -> None:
    """Pull what changed in each connected source since the last sync into the ledger."""
    from bot.core.settings import load_settings
    from bot.ledger.sources import sync_all
    from bot.workspaces.registry import open_runtime
    from integrations.wiring import crm_openers, ledger_source_opener, links_for, slack_for

    runtime = open_runtime(load_settings())
    try:
        settings = runtime.settings
        slack = slack_for(settings)
        done = sync_all(
            runtime,
            slack,
            open_source=ledger_source_opener(settings),
            crms=crm_openers(settings),
            links=links_for(settings),
        )
        if not done.connected:
            raise UserError(
                "no source is connected: run `arbot connect quickbooks` (or xero, freshbooks), "
                "or set HUBSPOT_TOKEN or PIPEDRIVE_TOKEN"
            )
        for result in done.results:
            _report(result)
        for crm in done.crm:
            _report_crm(crm)
    finally:
        runtime.close()
    if done.failed or done.busy:
        raise UserError("; ".join(done.failed + done.busy))


def _report(result: SyncResult) -> None:
    from bot.ledger.sync_failures import LABELS

    name, s = result.source, result.summary
    out().print(
        f"{name}: {s.invoices_created} new invoice(s), {s.invoices_updated} changed "
        f"({len(s.invoices_paid)} paid, {len(s.invoices_voided)} voided, "
        f"{len(s.invoices_reopened)} reopened), {s.customers_created} new customer(s), "
        f"{s.payments_recorded} payment(s); {len(s.cancelled_reminders)} waiting reminder(s) "
        f"cancelled; {result.notes_written} note(s) written back.",
        markup=False,
    )
    for problem in result.problems:
        err().print(
            f"{name}: skipped {problem.kind} {problem.external_id or ''}: {problem.message}",
            markup=False,
        )
    if s.invoices_restored:
        out().print(
            f"{name}: restored {len(s.invoices_restored)} invoice(s) voided as no longer in "
            f"{LABELS.get(name, name)}: {', '.join(s.invoices_restored)}",
            markup=False,
        )
    if s.voids_held:
        shown = ", ".join(s.voids_held[:10]) + (", …" if len(s.voids_held) > 10 else "")
        err().print(
            f"{name}: the full answer lacked {len(s.voids_held)} open invoice(s) ({shown}): "
            "none was voided, as that is too many to be deletions. Check that arbot is connected "
            f"to the right company (`arbot connect {name}` to connect another); the next sync "
            "reads everything again and checks again",
            markup=False,
        )
    if s.records_skipped:
        err().print(f"{name}: {s.records_skipped} record(s) skipped: {_next(result)}", markup=False)
    for failure in result.notes_failed:
        err().print(f"{name}: note not written for {failure}", markup=False)


def _next(result: SyncResult) -> str:
    """What the next sync does about the records this one skipped (bot/ledger/sync.py)."""
    from bot.ledger.sync import CURSOR_KEPT_AT_MOST

    if result.skipped_next == "by_id":
        return (
            "the next sync fetches each again by its id, so each is stored once it is fixed there"
        )
    if result.skipped_next == "cursor_moved":
        return (
            f"the last {CURSOR_KEPT_AT_MOST} syncs read the source again from where they started "
            "for them, so this one moves on: each is stored once it is fixed there and so "
            "changed since"
        )
    return (
        "the next sync reads the source again from where this one started, so each is stored "
        "once it is fixed there"
    )


def _report_crm(result: CrmSyncResult) -> None:
    m = result.summary
    out().print(
        f"{result.source}: {m.matched} account(s) matched, {m.updated} customer(s) updated, "
        f"{m.contacts_added} billing contact(s) added, {len(m.unmatched)} not matched; "
        f"{result.activities_logged} activity note(s) written.",
        markup=False,
    )
    errors = err()
    for conflict in m.conflicts:
        errors.print(f"{result.source}: left for a person: {conflict}", markup=False)
    for problem in result.problems:
        errors.print(
            f"{result.source}: skipped {problem.kind} {problem.external_id or ''}: "
            f"{problem.message}",
            markup=False,
        )
    for failure in result.activities_failed:
        errors.print(f"{result.source}: note not written for {failure}", markup=False)
