"""Ledger sources (QuickBooks, Xero, FreshBooks) and CRMs (HubSpot, Pipedrive): the stored OAuth
grant or the token works, by one cheap documented read each, through the clients and base-URL
settings sync uses (an expired access token is refreshed and the rotated refresh token saved, as
sync would). HubSpot's scopes are read from the token's own description and compared with what
arbot asks of HubSpot (integrations/hubspot.py's table, crm.objects.contacts.write only when
ARBOT_CRM_LOG_ACTIVITY writes notes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.core.errors import UserError
from bot.core.settings import Settings
from integrations.base.ledger import Tokens, TokenStore
from integrations.crm_http import CrmClient
from integrations.doctor.findings import Finding, not_configured, ok, problem
from integrations.errors import SourceError
from integrations.hubspot import HUBSPOT
from integrations.oauth_client import OAuthClient
from integrations.pipedrive import PIPEDRIVE
from integrations.tls import http_client
from integrations.wiring import provider_for

LABELS = {"quickbooks": "QuickBooks", "xero": "Xero", "freshbooks": "FreshBooks"}
NOTES_SCOPE = "crm.objects.contacts.write"  # POST /crm/v3/objects/notes, per HubSpot's reference


def check_ledger_source(
    settings: Settings,
    name: str,
    open_store: Callable[[], TokenStore],
    now: Callable[[], datetime],
    timeout: float,
) -> list[Finding]:
    label = LABELS[name]
    prefix = name.upper()
    has_app = bool(
        getattr(settings, f"{name}_client_id") and getattr(settings, f"{name}_client_secret")
    )
    try:
        store = open_store()
        tokens = store.load(name)
    except UserError as exc:  # no ARBOT_SECRET_KEY, or sealed with another one
        if not has_app:
            return [not_configured(label, f"not connected (`arbot connect {name}`)")]
        return [problem(label, "grant", str(exc))]
    if tokens is None:
        if has_app:
            return [
                problem(
                    label,
                    "grant",
                    f"{prefix}_CLIENT_ID is set but {label} is not connected: run `arbot connect "
                    f"{name}`",
                )
            ]
        return [
            not_configured(
                label,
                f"not connected (`arbot connect {name}` after setting {prefix}_CLIENT_ID and "
                f"{prefix}_CLIENT_SECRET)",
            )
        ]
    try:
        provider = provider_for(settings, name)
    except UserError as exc:
        return [
            problem(
                label, "grant", f"{label} is connected but {exc} (the app the grant was made with)"
            )
        ]
    client = OAuthClient(provider, store, now, http=http_client(timeout=timeout), max_retry_after=0)
    try:
        described = _read(name, settings, client, tokens)
    except SourceError as exc:
        return [problem(label, "grant", str(exc))]
    finally:
        client.close()
    return [described]


def _read(name: str, settings: Settings, client: OAuthClient, tokens: Tokens) -> Finding:
    label, tenant = LABELS[name], tokens.tenant_id or ""
    if name == "quickbooks":
        base = settings.quickbooks_api_url.rstrip("/")
        body = client.json("GET", f"{base}/v3/company/{tenant}/companyinfo/{tenant}")
        company = (
            (body.get("CompanyInfo") or {}).get("CompanyName") if isinstance(body, dict) else None
        )
        return ok(
            label, "grant", f"the stored grant works: company {company or '?'} (realm {tenant})"
        )
    if name == "xero":
        body = client.json("GET", f"{settings.xero_api_url.rstrip('/')}/connections")
        tenants = {
            str(c.get("tenantId")): str(c.get("tenantName") or "")
            for c in body or []
            if isinstance(c, dict)
        }
        if tenant not in tenants:
            return problem(
                label,
                "grant",
                f"the organisation {tenant} is no longer connected to arbot in Xero: run `arbot "
                "connect xero`",
            )
        return ok(
            label,
            "grant",
            f"the stored grant works: organisation {tenants[tenant] or '?'} ({tenant})",
        )
    body = client.json("GET", f"{settings.freshbooks_api_url.rstrip('/')}/auth/api/v1/users/me")
    memberships = ((body or {}).get("response") or {}).get("business_memberships") or []
    names = {
        str(m["business"].get("account_id")): str(m["business"].get("name") or "")
        for m in memberships
        if isinstance(m, dict) and isinstance(m.get("business"), dict)
    }
    if tenant not in names:
        return problem(
            label,
            "grant",
            f"the connected login no longer belongs to the business {tenant}: run `arbot connect "
            "freshbooks`",
        )
    return ok(label, "grant", f"the stored grant works: business {names[tenant] or '?'} ({tenant})")


# One cheap read per scope sync needs; a 403 there is the scope missing.
HUBSPOT_READS = (
    ("/crm/v3/objects/companies", "crm.objects.companies.read"),
    ("/crm/v3/objects/contacts", "crm.objects.contacts.read"),
    ("/crm/v3/owners", "crm.objects.owners.read"),
)


def check_hubspot(settings: Settings, timeout: float) -> list[Finding]:
    """The token, and each scope: the read ones by reading (one record each), the notes one
    (a write, never tried) from HubSpot's description of a private app token or service key."""
    label = HUBSPOT.label
    if settings.hubspot_token is None:
        return [
            not_configured(
                label, "no CRM context from HubSpot (set HUBSPOT_TOKEN to a service key)"
            )
        ]
    token = settings.hubspot_token.get_secret_value()
    missing: list[str] = []
    with http_client(timeout=timeout) as http:
        auth = {"Authorization": f"Bearer {token}"}
        client = CrmClient(HUBSPOT, settings.hubspot_api_url, auth, http, max_wait=0)
        try:
            for path, scope in HUBSPOT_READS:
                status, _ = client.json("GET", path, {"limit": "1"}, allow=(403,))
                if status == 403:
                    missing.append(scope)
            if settings.crm_log_activity:
                status, body = client.json(
                    "POST",
                    "/oauth/v2/private-apps/get/access-token-info",
                    body={"tokenKey": token},
                    allow=range(400, 500),
                    repeatable=True,
                )
        except SourceError as exc:
            return [problem(label, "token", str(exc))]
    found = [ok(label, "token", "HUBSPOT_TOKEN works")]
    needed = _hubspot_scopes(settings.crm_log_activity)
    if settings.crm_log_activity:
        granted = body.get("scopes") if status == 200 and isinstance(body, dict) else None
        if not isinstance(granted, list):
            return [
                *found,
                problem(
                    label,
                    "scopes",
                    f"HubSpot did not say which scopes the token has (HTTP {status}), so the one "
                    f"notes need could not be checked: make sure it has {NOTES_SCOPE}"
                    + (f" and {', '.join(missing)}" if missing else ""),
                ),
            ]
        missing += [NOTES_SCOPE] if NOTES_SCOPE not in granted else []
    if missing:
        why = " (notes need it: ARBOT_CRM_LOG_ACTIVITY is on)" if NOTES_SCOPE in missing else ""
        return [
            *found,
            problem(
                label,
                "scopes",
                f"HUBSPOT_TOKEN lacks the scope(s) {', '.join(missing)}{why}: add them to the "
                "service key (or private app) in HubSpot",
            ),
        ]
    return [
        *found,
        ok(label, "scopes", f"the token has every scope arbot needs ({', '.join(needed)})"),
    ]


def _hubspot_scopes(notes: bool) -> list[str]:
    """The scopes of HubSpot's table, each once; the notes scope only when notes are written."""
    needed: list[str] = []
    for request, scope in HUBSPOT.scopes:
        writes = request.startswith("POST /crm/v3/objects/notes")
        if scope not in needed and (notes or not writes):
            needed.append(scope)
    return needed


def check_pipedrive(settings: Settings, timeout: float) -> list[Finding]:
    label = PIPEDRIVE.label
    if settings.pipedrive_token is None:
        return [
            not_configured(
                label, "no CRM context from Pipedrive (set PIPEDRIVE_TOKEN to an API token)"
            )
        ]
    token = settings.pipedrive_token.get_secret_value()
    with http_client(timeout=timeout) as http:
        client = CrmClient(
            PIPEDRIVE, settings.pipedrive_api_url, {"x-api-token": token}, http, max_wait=0
        )
        try:
            _, body = client.json("GET", "/v1/users/me")
        except SourceError as exc:
            return [problem(label, "token", str(exc))]
    user: Any = body.get("data") if isinstance(body, dict) else None
    user = user if isinstance(user, dict) else {}
    company = user.get("company_name") or user.get("company_domain") or "?"
    return [
        ok(label, "token", f"PIPEDRIVE_TOKEN works: user {user.get('name') or '?'} of {company}")
    ]
