"""The OAuth state of an install in progress, signed rather than stored: `<issued>.<nonce>.<mac>`,
an HMAC under ARBOT_SECRET_KEY, good for STATE_SECONDS. Nothing is written for an anonymous visit
to /slack/install; the state is bound to the browser by a cookie holding the same value, and
Slack's code is itself good for one exchange only.

And a bound on how often one address may start an install, so the page cannot be used to make
arbot do work in a loop."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from datetime import datetime

from integrations.slack_install import STATE_SECONDS

_PURPOSE = b"arbot slack install state v1:"
_FUTURE_SKEW_SECONDS = 60  # a state from a moment "ahead": another replica's clock


def issue_state(secret_key: str, now: datetime) -> str:
    issued = f"{int(now.timestamp())}.{secrets.token_urlsafe(16)}"
    return f"{issued}.{_mac(secret_key, issued)}"


def state_is_valid(secret_key: str, state: str, now: datetime) -> bool:
    """Signed under `secret_key` and issued within the last STATE_SECONDS."""
    issued, _, mac = state.rpartition(".")
    at = issued.partition(".")[0]
    if not (secret_key and state.isascii() and at.isdigit() and len(at) <= 12 and mac):
        return False
    if not hmac.compare_digest(_mac(secret_key, issued), mac):
        return False
    age = now.timestamp() - int(at)
    return -_FUTURE_SKEW_SECONDS <= age <= STATE_SECONDS


def _mac(secret_key: str, issued: str) -> str:
    digest = hmac.new(secret_key.encode(), _PURPOSE + issued.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


class AttemptLimit:
    """At most `per_window` attempts from one address in any `window_seconds`; the addresses seen
    are forgotten once their attempts are older than the window."""

    def __init__(self, per_window: int, window_seconds: float, max_addresses: int = 10_000) -> None:
        self.per_window = per_window
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str, now: datetime) -> bool:
        at = now.timestamp()
        with self._lock:
            if len(self._seen) >= self.max_addresses:
                self._forget_before(at - self.window_seconds)
            if len(self._seen) >= self.max_addresses:
                return False  # more addresses at once than any real set of installers
            times = self._seen.setdefault(address, deque())
            while times and times[0] <= at - self.window_seconds:
                times.popleft()
            if len(times) >= self.per_window:
                return False
            times.append(at)
            return True

    def _forget_before(self, cutoff: float) -> None:
        for address in [a for a, times in self._seen.items() if not times or times[-1] <= cutoff]:
            del self._seen[address]
