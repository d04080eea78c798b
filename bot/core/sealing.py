"""Secrets at rest: Fernet (authenticated encryption) under a key derived from ARBOT_SECRET_KEY
with HKDF-SHA256, one derived key per purpose, so a value sealed for one use never opens as
another. A wrong key is an error that says so, never garbage."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.core.errors import UserError


class SealError(UserError):
    """A sealed value that this key cannot open."""


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """32 bytes for `purpose`, derived from the deployment's secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


class Sealer:
    """Seals and opens text for one purpose (the HKDF info, fixed: changing it makes every value
    sealed before unreadable). `needed_for` says in the error what the key protects."""

    def __init__(self, secret_key: str, purpose: bytes, needed_for: str) -> None:
        if not secret_key:
            raise UserError(
                f"ARBOT_SECRET_KEY is not set: it encrypts {needed_for} at rest; "
                "set it to a long random string and keep it"
            )
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, purpose)))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str:
        """The text; SealError when this key did not seal it."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealError("sealed with a different ARBOT_SECRET_KEY") from None


# Each installed workspace's Slack tokens, kept in slack_sdk's tables in the main database:
# integrations.slack_install seals them as it stores them, bot.workspaces.installs opens the bot
# token to serve the workspace.
SLACK_TOKENS = b"arbot slack tokens v1"


def slack_token_sealer(secret_key: str) -> Sealer:
    return Sealer(secret_key, SLACK_TOKENS, "each workspace's Slack token")
