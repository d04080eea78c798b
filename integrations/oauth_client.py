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

from integrations.base.ledger import Tokens, TokenStore
from integrations.errors import ReconnectNeeded, SourceError, SourceUnavailable, json_or_empty
from integrations.http_retry import Retries
from integrations.oauth import Provider, refresh
from integrations.tls import http_client

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After ends the run instead of blocking it


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
        self.http = http or http_client(timeout=30)
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
        retries = Retries(
            label=self.provider.label,
            repeatable=method.upper() == "GET",
            sleep=self.sleep,
            max_wait=self.max_retry_after,
            asked_wait=lambda response: _retry_after(
                response.headers.get("Retry-After"), self.now()
            ),
            when_to_retry=self._when_to_retry,
            log=log,
            resendable=httpx.TransportError,
        )
        while True:
            response = self._send(retries, method, url, tokens, params, json_body, headers)
            if response.status_code == 401 and not refreshed_for_401:
                refreshed_for_401 = True
                tokens = self._refresh(tokens)
                continue
            if retries.again(response):
                continue
            if response.status_code < 400 or response.status_code in allow:
                return response
            raise self._failure(method, url, response)

    def _send(
        self,
        retries: Retries,
        method: str,
        url: str,
        tokens: Tokens,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        all_headers["Authorization"] = f"Bearer {tokens.access_token}"
        return retries.send(
            lambda: self.http.request(
                method, url, params=params, json=json_body, headers=all_headers
            )
        )

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

    def _when_to_retry(self, wait: float) -> str:
        resume = self.now() + timedelta(seconds=wait)
        return f"try again after {resume:%Y-%m-%d %H:%M} UTC"

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
