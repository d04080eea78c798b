"""Signed per-reminder tokens, and where they sit in the addresses arbot sends from.

The outbox signs a token for each purpose ("reply", "unsubscribe", "bounce", "status") and puts it
in the Reply-To (`ar+r.<token>@`), the unsubscribe address (`ar+u.<token>@`), the envelope sender
(`bounce+<token>@`, VERP) or the delivery-status callback URL; inbound mail and webhooks find their
reminder by verifying it. A forged or tampered token, or one signed for another purpose, never
verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

# purpose (as signed by token()) -> where its token sits in the local part of an address
TOKEN_PREFIXES = {"reply": "+r.", "unsubscribe": "+u.", "bounce": "bounce+"}


def token(secret_key: str, reminder_id: int, purpose: str) -> str:
    """A signed per-reminder token: `<id>.<hmac>`; a forged or tampered one does not verify."""
    mac = hmac.new(secret_key.encode(), f"{purpose}:{reminder_id}".encode(), hashlib.sha256)
    return f"{reminder_id}.{mac.hexdigest()[:20]}"


def verify_token(secret_key: str, value: str, purpose: str) -> int | None:
    reminder_text, _, _ = value.partition(".")
    if not (value.isascii() and reminder_text.isdigit() and len(reminder_text) < 18):
        return None
    expected = token(secret_key, int(reminder_text), purpose)
    return int(reminder_text) if hmac.compare_digest(expected, value) else None


def tokens(recipients: Iterable[str], prefix: str) -> tuple[str, ...]:
    """The tokens after `prefix` in the recipients' local parts: "+r." (reply), "+u."
    (unsubscribe) sit after the mailbox name (`ar+r.<token>@`), "bounce+" starts it (VERP)."""
    found: list[str] = []
    for address in recipients:
        local = address.rpartition("@")[0].lower()
        at = local.find(prefix)
        if at < 0 or (at == 0) == prefix.startswith("+"):
            continue
        value = local[at + len(prefix) :]
        if value and value not in found:
            found.append(value)
    return tuple(found)


def reminder_ids(recipients: Iterable[str], secret_key: str, purpose: str) -> tuple[int, ...]:
    """The reminders whose signed `purpose` token ("reply", "unsubscribe", "bounce") is among the
    recipients. A forged or tampered token is left out (tokens() still shows it)."""
    found = (
        verify_token(secret_key, t, purpose) for t in tokens(recipients, TOKEN_PREFIXES[purpose])
    )
    return tuple(dict.fromkeys(i for i in found if i is not None))
