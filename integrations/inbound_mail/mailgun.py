"""Mailgun routes: a route's forward() to our URL posts a form signed with the webhook signing
key (`signature` = HMAC-SHA256 of `timestamp` and `token`). To a URL ending in "mime" the form
carries the message as it arrived (`body-mime`); to any other, Mailgun's parsed fields, from
which the message is made again (headers from `message-headers`, `body-plain`, `body-html`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from datetime import datetime

from integrations.inbound_mail.rebuild import rebuilt_message

MAX_SKEW_SECONDS = 300  # a timestamp further than this from now is refused
REMEMBERED_TOKENS = 100_000


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def signed_by_mailgun(
    signing_key: str, timestamp: str, token: str, signature: str, now: datetime
) -> bool:
    """The signature is the key's, and the timestamp is within MAX_SKEW_SECONDS of now."""
    if not (signing_key and token and signature and timestamp.isdigit() and len(timestamp) < 13):
        return False
    if abs(now.timestamp() - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    expected = mailgun_signature(signing_key, timestamp, token)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


class TokenLedger:
    """The tokens of signed requests seen within the skew window, so each is accepted once.

    Kept in this process: a replayed request sent to another replica is handled by the reply
    pipeline, which stores a Message-ID once only."""

    def __init__(self, capacity: int = REMEMBERED_TOKENS) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, token: str) -> bool:
        """True the first time `token` is offered within the window; False after."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now or len(self._seen) >= self.capacity
            ):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = now + 2 * MAX_SKEW_SECONDS
            return True


def message_from_form(form: dict[str, bytes]) -> bytes | None:
    """The raw message: `body-mime` as it came, else made from the parsed fields; None when the
    form carries neither."""
    raw = form.get("body-mime")
    if raw is not None:
        return raw
    if "message-headers" not in form:
        return None
    try:
        listed = json.loads(form["message-headers"].decode("utf-8", errors="replace"))
    except ValueError:
        listed = []
    headers: list[tuple[str, str]] = []
    if isinstance(listed, list):
        headers = [(str(p[0]), str(p[1])) for p in listed if isinstance(p, list) and len(p) == 2]
    text = form.get("body-plain", b"").decode("utf-8", errors="replace")
    html = form.get("body-html", b"").decode("utf-8", errors="replace") or None
    return rebuilt_message(headers, text, html)
