"""Signing in to the mailbox with OAuth 2.0 instead of a password: Gmail / Google Workspace and
Microsoft 365, for SMTP (sending) and IMAP (reading) with SASL XOAUTH2.

The grant comes from `arbot connect gmail|microsoft365` (the same authorization code flow as the
ledger sources, integrations/oauth.py) and is kept sealed in `mailbox_grants`
(integrations/mailbox_grants.py). `MailboxAccess` hands out an access token that is fresh, refreshing
it shortly before it expires (by the injectable clock) and saving each refresh token the provider
rotates in; when the provider refuses the grant (invalid_grant: revoked, expired, password
changed) it records the refusal once and raises ReconnectNeeded, whose message names the command
that fixes it.

- Both: openid and email too, for an ID token naming who signed in (`arbot connect` refuses a
  sign-in as another mailbox than the one arbot sends as).
- Google: scope https://mail.google.com/ (the one scope for IMAP, POP and SMTP), and
  access_type=offline with prompt=consent so a refresh token comes back on every consent.
- Microsoft identity platform v2: https://outlook.office.com/SMTP.Send and
  https://outlook.office.com/IMAP.AccessAsUser.All plus offline_access (the refresh token);
  the scopes are sent again with each refresh, and refresh tokens rotate.

Both put what is sent over SMTP submission into the mailbox's Sent folder themselves (Gmail files
every message its SMTP server accepts under Sent Mail; Exchange Online saves SMTP AUTH client
submissions to Sent Items), so arbot appends no copy over IMAP: a copy would show twice.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from integrations.base.ledger import Tokens
from integrations.errors import ReconnectNeeded
from integrations.oauth import Provider, refresh

log = logging.getLogger(__name__)

GMAIL = "gmail"
MICROSOFT365 = "microsoft365"
MAILBOXES = (GMAIL, MICROSOFT365)

GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GMAIL_SCOPE = "https://mail.google.com/"
MICROSOFT_LOGIN_URL = "https://login.microsoftonline.com"
MICROSOFT_SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
MICROSOFT_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"

WHO = ("openid", "email")  # an ID token naming the account that signed in, checked at connect
REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires


def gmail_provider(
    client_id: str,
    client_secret: str,
    authorize_endpoint: str = GOOGLE_AUTHORIZE_URL,
    token_endpoint: str = GOOGLE_TOKEN_URL,
) -> Provider:
    return Provider(
        name=GMAIL,
        label="Gmail",
        env_prefix="GMAIL",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint,
        token_endpoint=token_endpoint,
        scopes=(GMAIL_SCOPE, *WHO),
        # offline: a refresh token; consent: asked again on a re-connect, so one comes back then too
        authorize_extra=(("access_type", "offline"), ("prompt", "consent")),
        secret_in_form=True,
    )


def microsoft365_provider(
    client_id: str,
    client_secret: str,
    tenant: str = "common",
    authorize_endpoint: str | None = None,
    token_endpoint: str | None = None,
) -> Provider:
    base = f"{MICROSOFT_LOGIN_URL}/{tenant}/oauth2/v2.0"
    return Provider(
        name=MICROSOFT365,
        label="Microsoft 365",
        env_prefix="MICROSOFT365",
        client_id=client_id,
        client_secret=client_secret,
        authorize_endpoint=authorize_endpoint or f"{base}/authorize",
        token_endpoint=token_endpoint or f"{base}/token",
        scopes=(MICROSOFT_SMTP_SCOPE, MICROSOFT_IMAP_SCOPE, "offline_access", *WHO),
        authorize_extra=(("response_mode", "query"),),
        secret_in_form=True,
        scopes_on_refresh=True,
    )


def signed_in_as(claims: Mapping[str, Any]) -> str | None:
    """The mailbox address an ID token names: Google's `email`; Microsoft's `email`, else its
    `preferred_username` (the sign-in name, an address for work accounts)."""
    for claim in ("email", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and "@" in value:
            return value
    return None


def xoauth2(user: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial client response, before base64: user, then the bearer token,
    each field ended by ^A and the whole by one more."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def xoauth2_base64(user: str, access_token: str) -> str:
    return base64.b64encode(xoauth2(user, access_token).encode()).decode()


class GrantStore(Protocol):
    """Where the mailbox grant lives (integrations.mailbox_grants.MailboxGrants)."""

    def load(self, provider: str) -> Tokens | None: ...

    def save(self, provider: str, tokens: Tokens) -> None: ...

    def refuse(self, provider: str, reason: str) -> bool: ...

    def refusal(self, provider: str) -> str | None: ...


class MailboxAccess:
    """Fresh access tokens for one mailbox, for SMTP and IMAP sessions alike (thread-safe: the
    send lanes share one)."""

    def __init__(
        self,
        provider: Provider,
        address: str,
        store: GrantStore,
        now: Callable[[], datetime],
        http: httpx.Client | None = None,
    ) -> None:
        self.provider = provider
        self.address = address  # the mailbox signed in as: the XOAUTH2 user
        self.store = store
        self.now = now
        self.http = http
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.provider.label

    def reconnect_hint(self) -> str:
        return f"run `arbot connect {self.provider.name}`"

    def access_token(self, force_refresh: bool = False) -> str:
        """A token good for at least REFRESH_MARGIN; `force_refresh` when the server refused
        the last one. ReconnectNeeded when there is no grant or the provider refused it;
        SourceUnavailable when the token endpoint cannot be reached (try later)."""
        with self._lock:
            tokens = self._stored()
            if not force_refresh and tokens.expires_at - REFRESH_MARGIN > self.now():
                return tokens.access_token
            return self._refreshed(tokens).access_token

    def _refreshed(self, tokens: Tokens, again: bool = True) -> Tokens:
        log.info("refreshing the %s mailbox access token", self.label)
        try:
            fresh = refresh(self.provider, tokens, self.now(), self.http)
        except ReconnectNeeded as refused:
            stored = self.store.load(self.provider.name)
            if again and stored is not None and stored.refresh_token != tokens.refresh_token:
                # Another process refreshed meanwhile and the provider rotated the refresh
                # token (or the mailbox was connected again): that newer grant stands.
                if stored.expires_at - REFRESH_MARGIN > self.now():
                    return stored
                return self._refreshed(stored, again=False)
            reason = (
                f"{self.label} refused arbot's sign-in to the mailbox {self.address} "
                f"(the grant was revoked or has expired): {self.reconnect_hint()}"
            )
            self.store.refuse(self.provider.name, reason)
            raise ReconnectNeeded(reason) from refused
        self.store.save(self.provider.name, fresh)  # at once: the old refresh token may be gone
        return fresh

    def sasl(self, force_refresh: bool = False) -> str:
        """The XOAUTH2 response (before base64) with a fresh token."""
        return xoauth2(self.address, self.access_token(force_refresh))

    def _stored(self) -> Tokens:
        refusal = self.store.refusal(self.provider.name)
        if refusal:
            raise ReconnectNeeded(refusal)
        tokens = self.store.load(self.provider.name)
        if tokens is None:
            raise ReconnectNeeded(
                f"the {self.label} mailbox is not connected: {self.reconnect_hint()}"
            )
        return tokens
