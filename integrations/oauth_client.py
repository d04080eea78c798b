"""An HTTP client for one accounting source's API that keeps its OAuth access token fresh.

`OAuthClient` refreshes the access token shortly before it expires and once more on a 401, saves
every refresh token the provider hands back (both rotate them), waits out a 429 for as long as
`Retry-After` asks (up to a cap), retries server errors a couple of times, and otherwise raises an
error that says what to do: reconnect, check credentials, or try again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from integrations.oauth import (
    Provider,
    ReconnectNeeded,
    SourceError,
    SourceUnavailable,
    Tokens,
    TokenStore,
    json_or_empty,
    refresh,
)

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After ends the run instead of blocking it
RATE_LIMIT_RETRIES = 3
SERVER_RETRIES = 2


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
    body = json_or_empty(response)
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
