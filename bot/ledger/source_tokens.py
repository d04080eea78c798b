"""The ledger sources' OAuth tokens at rest: the `source_tokens` table, one row per provider,
encrypted with Fernet under a key derived from ARBOT_SECRET_KEY (HKDF-SHA256). Fernet
authenticates, so a wrong key is an error that says so, never garbage. A save replaces the row in
one statement (insert or update), so two processes saving at once cannot collide."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from bot.core.errors import UserError
from bot.core.models import SourceToken
from bot.core.runtime import Runtime
from bot.core.sealing import Sealer, SealError
from integrations.base.ledger import Tokens

_HKDF_INFO = b"arbot source tokens v1"  # fixed: changing it makes every stored token unreadable


class TokenCipher:
    def __init__(self, secret_key: str) -> None:
        self._sealer = Sealer(secret_key, _HKDF_INFO, "the ledger source tokens")

    def encrypt(self, tokens: Tokens) -> str:
        plain = {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.astimezone(UTC).isoformat(),
            "tenant_id": tokens.tenant_id,
        }
        return self._sealer.seal(json.dumps(plain))

    def decrypt(self, ciphertext: str, provider: str) -> Tokens:
        try:
            plain = json.loads(self._sealer.open(ciphertext))
        except SealError:
            raise UserError(
                f"the stored {provider} tokens cannot be decrypted with this ARBOT_SECRET_KEY: "
                f"set the key they were saved with, or run `arbot connect {provider}` again"
            ) from None
        return Tokens(
            access_token=plain["access_token"],
            refresh_token=plain["refresh_token"],
            expires_at=datetime.fromisoformat(plain["expires_at"]),
            tenant_id=plain["tenant_id"],
        )


class DatabaseTokenStore:
    """A TokenStore (integrations.oauth) over the `source_tokens` table."""

    def __init__(self, runtime: Runtime, cipher: TokenCipher | None = None) -> None:
        self.runtime = runtime
        if cipher is None:
            secret = runtime.settings.secret_key
            cipher = TokenCipher(secret.get_secret_value() if secret else "")
        self.cipher = cipher

    def load(self, provider: str) -> Tokens | None:
        with self.runtime.sessions() as session:
            row = session.get(SourceToken, provider)
            if row is None:
                return None
            return self.cipher.decrypt(row.ciphertext, provider)

    def save(self, provider: str, tokens: Tokens) -> None:
        values = {
            "provider": provider,
            "tenant_id": tokens.tenant_id,
            "ciphertext": self.cipher.encrypt(tokens),
            "expires_at": tokens.expires_at,
            "updated_at": self.runtime.clock.now(),
        }
        with self.runtime.writing() as session:
            dialect = session.get_bind().dialect.name
            insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(SourceToken).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[SourceToken.provider],
                    set_={k: statement.excluded[k] for k in values if k != "provider"},
                )
            )
