"""OAuth 2.0 for the accounting sources (QuickBooks Online, Xero, FreshBooks): the authorization
code flow, token refresh, where tokens are kept (`TokenStore`; `bot.ledger.source_tokens` keeps them
encrypted in the database).

The HTTP client that keeps its access token fresh, `OAuthClient`, lives in
integrations.oauth_client; the errors a source raises in integrations.errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from bot.core.errors import UserError
from integrations.base.ledger import Tokens
from integrations.errors import ReconnectNeeded, SourceError, SourceUnavailable, json_or_empty
from integrations.tls import http_client

QUICKBOOKS_AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
QUICKBOOKS_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
FRESHBOOKS_AUTHORIZE_URL = "https://auth.freshbooks.com/oauth/authorize"
FRESHBOOKS_TOKEN_URL = "https://api.freshbooks.com/auth/oauth/token"


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # "quickbooks", "xero", "freshbooks": the key tokens are kept under, the CLI word
    label: str  # how people write it
    env_prefix: str  # where its credentials live: QUICKBOOKS_CLIENT_ID, ...
    client_id: str
    client_secret: str
    authorize_endpoint: str
    token_endpoint: str
    scopes: tuple[str, ...]
    # Further query parameters of the authorize link (Google: access_type=offline, prompt=consent)
    authorize_extra: tuple[tuple[str, str], ...] = ()
    # The app's credentials in the token request's form (client_secret_post) instead of HTTP Basic
    secret_in_form: bool = False
    # Microsoft asks for the scopes again on each refresh
    scopes_on_refresh: bool = False

    def reconnect_hint(self) -> str:
        return f"run `arbot connect {self.name}` again"


def quickbooks_provider(
    client_id: str,
    client_secret: str,
    authorize_endpoint: str = QUICKBOOKS_AUTHORIZE_URL,
    token_endpoint: str = QUICKBOOKS_TOKEN_URL,
) -> Provider:
    return Provider(
        name="quickbooks",
        label="QuickBooks",
        env_prefix="QUICKBOOKS",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint,
        token_endpoint=token_endpoint,
        scopes=("com.intuit.quickbooks.accounting",),
    )


def xero_provider(
    client_id: str,
    client_secret: str,
    authorize_endpoint: str = XERO_AUTHORIZE_URL,
    token_endpoint: str = XERO_TOKEN_URL,
) -> Provider:
    return Provider(
        name="xero",
        label="Xero",
        env_prefix="XERO",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint,
        token_endpoint=token_endpoint,
        # offline_access is what makes Xero hand out a refresh token.
        scopes=("offline_access", "accounting.transactions", "accounting.contacts"),
    )


def freshbooks_provider(
    client_id: str,
    client_secret: str,
    authorize_endpoint: str = FRESHBOOKS_AUTHORIZE_URL,
    token_endpoint: str = FRESHBOOKS_TOKEN_URL,
) -> Provider:
    return Provider(
        name="freshbooks",
        label="FreshBooks",
        env_prefix="FRESHBOOKS",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint,
        token_endpoint=token_endpoint,
        # What the source reads, and the client note it writes; the app must be registered
        # for all five.
        scopes=(
            "user:profile:read",
            "user:clients:read",
            "user:clients:write",
            "user:invoices:read",
            "user:payments:read",
        ),
    )


class MemoryTokenStore:
    """Tokens kept in memory only: for a one-off run (and tests); nothing survives the process."""

    def __init__(self, initial: Mapping[str, Tokens] | None = None) -> None:
        self.tokens: dict[str, Tokens] = dict(initial or {})

    def load(self, provider: str) -> Tokens | None:
        return self.tokens.get(provider)

    def save(self, provider: str, tokens: Tokens) -> None:
        self.tokens[provider] = tokens


# --- The authorization code flow -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redirect:
    """What came back on the redirect: the code, the state to check, QuickBooks' realmId."""

    code: str
    state: str | None
    realm_id: str | None


def authorize_url(provider: Provider, state: str, redirect_uri: str) -> str:
    """Where to send the person who connects the source."""
    query = {
        "client_id": provider.client_id,
        "response_type": "code",
        "scope": " ".join(provider.scopes),
        "redirect_uri": redirect_uri,
        "state": state,
        **dict(provider.authorize_extra),
    }
    return f"{provider.authorize_endpoint}?{urlencode(query)}"


def parse_redirect(pasted: str, expected_state: str) -> Redirect:
    """The URL the browser landed on (or just the code), as pasted back by the person."""
    text = pasted.strip()
    if not text:
        raise UserError("nothing was pasted: paste the whole address the browser landed on")
    if "code=" not in text and "error=" not in text:
        if "://" in text or "?" in text:
            raise UserError(
                "the pasted address carries no code: paste the address the browser landed on "
                "after you allowed access"
            )
        return Redirect(code=text, state=None, realm_id=None)  # a bare code; nothing to check
    query = parse_qs(urlparse(text).query if "?" in text else text)
    if "error" in query:
        raise UserError(f"the authorization was refused: {query['error'][0]}; start over")
    state = query.get("state", [None])[0]
    if state != expected_state:
        raise UserError(
            "the pasted address is from another attempt (its state does not match): "
            "open the link printed above and paste the address it leads to"
        )
    return Redirect(code=query["code"][0], state=state, realm_id=query.get("realmId", [None])[0])


def exchange_code(
    provider: Provider,
    code: str,
    redirect_uri: str,
    now: datetime,
    tenant_id: str | None = None,
    http: httpx.Client | None = None,
) -> Tokens:
    """Trade the authorization code for the first tokens."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    body = _token_request(provider, form, http)
    return _tokens(provider, body, now, tenant_id, previous_refresh=None)


def exchange_code_signed_in(
    provider: Provider,
    code: str,
    redirect_uri: str,
    now: datetime,
    http: httpx.Client | None = None,
) -> tuple[Tokens, dict[str, Any]]:
    """The first tokens, and the claims of the OpenID Connect ID token that came with them (empty
    when none did): who signed in. The ID token comes straight from the token endpoint over TLS,
    which OpenID Connect Core (3.1.3.7) lets stand in for checking its signature."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    body = _token_request(provider, form, http)
    return _tokens(provider, body, now, None, previous_refresh=None), _id_claims(body)


def _id_claims(body: dict[str, Any]) -> dict[str, Any]:
    token = body.get("id_token")
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def refresh(
    provider: Provider, tokens: Tokens, now: datetime, http: httpx.Client | None = None
) -> Tokens:
    """New tokens for old; the refresh token in the answer replaces the old one when it differs."""
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    if provider.scopes_on_refresh:
        form["scope"] = " ".join(provider.scopes)
    body = _token_request(provider, form, http)
    return _tokens(provider, body, now, tokens.tenant_id, previous_refresh=tokens.refresh_token)


def _token_request(
    provider: Provider, form: dict[str, str], http: httpx.Client | None
) -> dict[str, Any]:
    client = http or http_client(timeout=30)
    credentials = {"client_id": provider.client_id, "client_secret": provider.client_secret}
    try:
        if provider.secret_in_form:
            response = client.post(
                provider.token_endpoint,
                data={**form, **credentials},
                headers={"Accept": "application/json"},
            )
        else:
            response = client.post(
                provider.token_endpoint,
                data=form,
                auth=(provider.client_id, provider.client_secret),  # HTTP Basic
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise SourceUnavailable(
            f"cannot reach {provider.label}'s token endpoint ({exc.__class__.__name__}): "
            "check the network and try again"
        ) from None
    finally:
        if http is None:
            client.close()
    body = json_or_empty(response)
    if response.status_code == 200 and body.get("access_token"):
        return body
    error = str(body.get("error", ""))
    if error == "invalid_grant":
        what = (
            "authorization code" if form["grant_type"] == "authorization_code" else "refresh token"
        )
        raise ReconnectNeeded(f"{provider.label} refused the {what}: {provider.reconnect_hint()}")
    if error == "invalid_client" or response.status_code == 401:
        raise SourceError(
            f"{provider.label} refused the app's credentials: check {provider.env_prefix}_CLIENT_ID "
            f"and {provider.env_prefix}_CLIENT_SECRET"
        )
    raise SourceUnavailable(
        f"{provider.label}'s token endpoint answered {response.status_code} "
        f"{error or response.reason_phrase}: try again later"
    )


def _tokens(
    provider: Provider,
    body: dict[str, Any],
    now: datetime,
    tenant_id: str | None,
    previous_refresh: str | None,
) -> Tokens:
    refresh_token = body.get("refresh_token") or previous_refresh
    if not refresh_token:
        raise UserError(
            f"{provider.label} gave no refresh token, so arbot could not stay connected: "
            f"check the app asks for offline access and {provider.reconnect_hint()}"
        )
    expires_in = int(body.get("expires_in", 3600))
    return Tokens(
        access_token=str(body["access_token"]),
        refresh_token=str(refresh_token),
        expires_at=now + timedelta(seconds=expires_in),
        tenant_id=tenant_id,
    )
