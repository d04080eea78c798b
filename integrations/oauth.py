"""OAuth 2.0 for the accounting sources (QuickBooks Online, Xero): the authorization code flow,
token refresh, where tokens are kept (`TokenStore`; `bot.source_tokens` keeps them encrypted in the
database), and an HTTP client that keeps its access token fresh.

`OAuthClient` refreshes the access token shortly before it expires and once more on a 401, saves
every refresh token the provider hands back (both rotate them), waits out a 429 for as long as
`Retry-After` asks (up to a cap), retries server errors a couple of times, and otherwise raises an
error that says what to do: reconnect, check credentials, or try again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from bot.errors import UserError

log = logging.getLogger(__name__)

QUICKBOOKS_AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
QUICKBOOKS_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
XERO_TOKEN_URL = "https://identity.xero.com/connect/token"

REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After ends the run instead of blocking it
RATE_LIMIT_RETRIES = 3
SERVER_RETRIES = 2


class SourceError(UserError):
    """A ledger source could not be reached or refused a request; the message says what to do."""


class ReconnectNeeded(SourceError):
    """The stored grant is gone (revoked, expired, never made): `arbot connect <provider>` again."""


class SourceUnavailable(SourceError):
    """Rate limited, down, or unreachable: nothing to fix here, try again later."""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # "quickbooks", "xero": the key tokens are stored under and the CLI word
    label: str  # how people write it
    env_prefix: str  # where its credentials live: QUICKBOOKS_CLIENT_ID, ...
    client_id: str
    client_secret: str
    authorize_endpoint: str
    token_endpoint: str
    scopes: tuple[str, ...]

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


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime  # when the access token stops working (UTC)
    tenant_id: str | None = None  # the QuickBooks realm or the Xero tenant the grant is for


class TokenStore(Protocol):
    def load(self, provider: str) -> Tokens | None: ...

    def save(self, provider: str, tokens: Tokens) -> None: ...


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


def refresh(
    provider: Provider, tokens: Tokens, now: datetime, http: httpx.Client | None = None
) -> Tokens:
    """New tokens for old; the refresh token in the answer replaces the old one when it differs."""
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    body = _token_request(provider, form, http)
    return _tokens(provider, body, now, tokens.tenant_id, previous_refresh=tokens.refresh_token)


def _token_request(
    provider: Provider, form: dict[str, str], http: httpx.Client | None
) -> dict[str, Any]:
    client = http or httpx.Client(timeout=30)
    try:
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
    body = _json_or_empty(response)
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


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- Calling the API ---------------------------------------------------------------------------


class OAuthClient:
    """Authorized requests to one provider's API, tokens loaded from and saved to a TokenStore."""

    def __init__(
        self,
        provider: Provider,
        store: TokenStore,
        now: Callable[[], datetime],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        self.provider = provider
        self.store = store
        self.now = now
        self.http = http or httpx.Client(timeout=30)
        self.sleep = sleep
        self.max_retry_after = max_retry_after

    def close(self) -> None:
        self.http.close()

    def tokens(self) -> Tokens:
        tokens = self.store.load(self.provider.name)
        if tokens is None:
            raise ReconnectNeeded(
                f"{self.provider.label} is not connected: run `arbot connect {self.provider.name}`"
            )
        return tokens

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The answer's JSON, numbers with a fraction as Decimal (money is never a float here)."""
        return self.decode(self.request(method, url, **kwargs))

    def decode(self, response: httpx.Response) -> Any:
        try:
            return response.json(parse_float=Decimal)
        except ValueError:
            raise SourceError(
                f"{self.provider.label} answered {response.request.method} "
                f"{response.request.url.path} with something that is not JSON: try again later"
            ) from None

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow: Collection[int] = (),
    ) -> httpx.Response:
        """Send with a fresh token; wait out rate limits; retry what can safely be retried.

        A 4xx answer raises, unless its status is in `allow`: then the caller reads it."""
        tokens = self._fresh(self.tokens())
        refreshed_for_401 = False
        rate_limited = server_errors = 0
        while True:
            response = self._send(method, url, tokens, params, json_body, headers)
            status = response.status_code
            if status == 401 and not refreshed_for_401:
                refreshed_for_401 = True
                tokens = self._refresh(tokens)
                continue
            if status == 429 and rate_limited < RATE_LIMIT_RETRIES:
                rate_limited += 1
                self._wait_out(response, rate_limited)
                continue
            if status >= 500 and _retryable(method, status) and server_errors < SERVER_RETRIES:
                server_errors += 1
                self.sleep(float(server_errors))
                continue
            if status < 400 or status in allow:
                return response
            raise self._failure(method, url, response)

    def _send(
        self,
        method: str,
        url: str,
        tokens: Tokens,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        all_headers["Authorization"] = f"Bearer {tokens.access_token}"
        attempt = 0
        while True:
            try:
                return self.http.request(
                    method, url, params=params, json=json_body, headers=all_headers
                )
            except httpx.HTTPError as exc:
                # A connection never made sent nothing; a read may be repeated; a write may not.
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                repeatable = unsent or (
                    method.upper() == "GET" and isinstance(exc, httpx.TransportError)
                )
                if not repeatable or attempt >= SERVER_RETRIES:
                    raise self._unreachable(exc) from None
                attempt += 1
                self.sleep(float(attempt))

    def _fresh(self, tokens: Tokens) -> Tokens:
        if tokens.expires_at - REFRESH_MARGIN > self.now():
            return tokens
        return self._refresh(tokens)

    def _refresh(self, tokens: Tokens) -> Tokens:
        stored = self.store.load(self.provider.name)
        if stored is not None and stored.access_token != tokens.access_token:
            # Another process refreshed meanwhile, and the provider rotated the refresh token:
            # use its tokens while they last, and refresh with its (newer) refresh token after.
            if stored.expires_at - REFRESH_MARGIN > self.now():
                return stored
            tokens = stored
        log.info("refreshing the %s access token", self.provider.label)
        fresh = refresh(self.provider, tokens, self.now(), self.http)
        self.store.save(self.provider.name, fresh)  # saved at once: the old grant may be gone
        return fresh

    def _wait_out(self, response: httpx.Response, attempt: int) -> None:
        wait = _retry_after(response.headers.get("Retry-After"), self.now())
        if wait is None:
            wait = min(5.0 * attempt, self.max_retry_after)
        if wait > self.max_retry_after:
            resume = self.now() + timedelta(seconds=wait)
            raise SourceUnavailable(
                f"{self.provider.label} is rate limiting arbot for {wait:.0f} s more: "
                f"try again after {resume:%Y-%m-%d %H:%M} UTC"
            )
        log.warning("%s rate limit: waiting %.1f s", self.provider.label, wait)
        self.sleep(wait)

    def _unreachable(self, exc: Exception) -> SourceUnavailable:
        return SourceUnavailable(
            f"cannot reach {self.provider.label} ({exc.__class__.__name__}): "
            "check the network and try again"
        )

    def _failure(self, method: str, url: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        detail = _error_detail(response)
        where = f"{method} {_path(url)}"
        if status == 401:
            return ReconnectNeeded(
                f"{self.provider.label} refused arbot's access even after a token refresh "
                f"({detail}): {self.provider.reconnect_hint()}"
            )
        if status == 403:
            return ReconnectNeeded(
                f"{self.provider.label} refused {where} ({detail}): the connection may have been "
                f"removed or lacks permission; {self.provider.reconnect_hint()}"
            )
        if status == 429 or status >= 500:
            return SourceUnavailable(
                f"{self.provider.label} answered {status} to {where} ({detail}): try again later"
            )
        return SourceError(f"{self.provider.label} refused {where} with {status}: {detail}")


def _retryable(method: str, status: int) -> bool:
    """A read can always be repeated; a write only when the server says it did nothing (503)."""
    return method.upper() == "GET" or status == 503


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds to wait: either a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _error_detail(response: httpx.Response) -> str:
    """The provider's own words about what went wrong, short."""
    body = _json_or_empty(response)
    fault = body.get("Fault") or body.get("fault")
    if isinstance(fault, dict):  # QuickBooks: {"Fault": {"Error": [{"Message", "Detail"}]}}
        errors = fault.get("Error") or fault.get("error") or []
        texts = [
            str(e.get("Detail") or e.get("detail") or e.get("Message") or e.get("message") or e)
            for e in errors
            if isinstance(e, dict)
        ]
        if texts:
            return "; ".join(texts)[:300]
    for key in ("Detail", "detail", "Message", "message", "Title", "error_description", "error"):
        if body.get(key):
            return str(body[key])[:300]
    return response.reason_phrase or f"HTTP {response.status_code}"


def _path(url: str) -> str:
    return urlparse(url).path or url
