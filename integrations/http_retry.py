"""Retrying one request to a source's API: what the CRM and OAuth clients share.

`Retries` holds the count for one request. `send` repeats a request that never reached the
provider, or a repeatable one that broke on the way (after 1 s, then 2 s); `again` waits out a
429 for as long as the provider asks, up to a cap, and retries a server error twice when the
request can safely be repeated. Each client keeps its own idea of how long a 429 asks to wait,
what to say when that is too long, and which errors end its requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from integrations.errors import SourceUnavailable

RATE_LIMIT_RETRIES = 3
SERVER_RETRIES = 2


@dataclass(slots=True)
class Retries:
    """The retries of one request to one provider."""

    label: str  # the provider as messages name it: "HubSpot"
    repeatable: bool  # sending it twice does no harm: a read, or a search sent as a POST
    sleep: Callable[[float], None]
    max_wait: float  # seconds: a longer rate-limit wait raises SourceUnavailable instead
    # The seconds a 429 asks to wait; None when it does not say (then 5 s, 10 s, 15 s).
    asked_wait: Callable[[httpx.Response], float | None]
    when_to_retry: Callable[[float], str]  # after a wait too long: "try again in 2 minutes"
    log: logging.Logger  # the client's logger, which reports each wait
    # What a repeatable request is sent again after; any error before a connection is made is.
    resendable: type[httpx.HTTPError] = httpx.HTTPError
    rate_limited: int = field(default=0, init=False)
    server_errors: int = field(default=0, init=False)

    def send(self, request: Callable[[], httpx.Response]) -> httpx.Response:
        """The answer to `request()`; SourceUnavailable when the provider cannot be reached."""
        attempt = 0
        while True:
            try:
                return request()
            except httpx.HTTPError as exc:
                # A connection never made sent nothing; a read may be repeated; a write may not.
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                resend = unsent or (self.repeatable and isinstance(exc, self.resendable))
                if not resend or attempt >= SERVER_RETRIES:
                    raise SourceUnavailable(
                        f"cannot reach {self.label} ({exc.__class__.__name__}): "
                        "check the network and try again"
                    ) from None
                attempt += 1
                self.sleep(float(attempt))

    def again(self, response: httpx.Response) -> bool:
        """Whether to send the request once more, having waited: after a 429 (SourceUnavailable
        when it asks for longer than `max_wait`), or after a server error when the request is
        repeatable or the server says it did nothing (503)."""
        status = response.status_code
        if status == 429 and self.rate_limited < RATE_LIMIT_RETRIES:
            self.rate_limited += 1
            self._wait_out(response)
            return True
        if (
            status >= 500
            and (self.repeatable or status == 503)
            and self.server_errors < SERVER_RETRIES
        ):
            self.server_errors += 1
            self.sleep(float(self.server_errors))
            return True
        return False

    def _wait_out(self, response: httpx.Response) -> None:
        wait = self.asked_wait(response)
        if wait is None:
            wait = min(5.0 * self.rate_limited, self.max_wait)
        if wait > self.max_wait:
            raise SourceUnavailable(
                f"{self.label} is rate limiting arbot for {wait:.0f} s more: "
                f"{self.when_to_retry(wait)}"
            )
        self.log.warning("%s rate limit: waiting %.1f s", self.label, wait)
        self.sleep(wait)
