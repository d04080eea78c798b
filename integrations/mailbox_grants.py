"""The mailbox's OAuth grant at rest: the `mailbox_grants` table, one row per provider (gmail,
microsoft365), the tokens sealed with a key derived from ARBOT_SECRET_KEY for this purpose alone.
Besides the tokens, a row remembers that the provider refused the grant: `refuse` records it once
(a conditional UPDATE, so two send lanes or two replicas tell Slack once), `connect` clears it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.core.errors import UserError
from bot.core.models import MailboxGrant
from bot.core.runtime import Runtime
from bot.core.sealing import Sealer, SealError
from integrations.base.ledger import Tokens

_HKDF_INFO = b"arbot mailbox grants v1"  # fixed: changing it makes every stored grant unreadable


class MailboxGrants:
    """The store MailboxAccess (integrations.mail_oauth) loads from and saves to."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def _sealer(self) -> Sealer:
        """Made when tokens are opened or sealed: whether a grant exists needs no key."""
        secret = self.runtime.settings.secret_key
        return Sealer(
            secret.get_secret_value() if secret else "", _HKDF_INFO, "the mailbox sign-in"
        )

    def load(self, provider: str) -> Tokens | None:
        with self.runtime.sessions() as session:
            row = session.get(MailboxGrant, provider)
            if row is None:
                return None
            try:
                plain = json.loads(self._sealer.open(row.ciphertext))
            except SealError:
                raise UserError(
                    f"the stored {provider} sign-in cannot be decrypted with this "
                    f"ARBOT_SECRET_KEY: set the key it was saved with, or run "
                    f"`arbot connect {provider}` again"
                ) from None
        return Tokens(
            access_token=plain["access_token"],
            refresh_token=plain["refresh_token"],
            expires_at=datetime.fromisoformat(plain["expires_at"]),
            tenant_id=None,
        )

    def save(self, provider: str, tokens: Tokens) -> None:
        """Refreshed tokens: replaces the sealed ones and leaves a refusal as it is."""
        self._upsert(provider, tokens, clear_refusal=False)

    def connect(self, provider: str, tokens: Tokens) -> None:
        """A new grant from `arbot connect`: sending and reading may go on."""
        self._upsert(provider, tokens, clear_refusal=True)

    def refuse(self, provider: str, reason: str) -> bool:
        """Record that the provider refused the grant; True only for the first to record it."""
        with self.runtime.writing() as session:
            done = session.execute(
                update(MailboxGrant)
                .where(MailboxGrant.provider == provider, MailboxGrant.refused_at.is_(None))
                .values(refused_at=self.runtime.clock.now(), refusal=reason)
            )
            return bool(getattr(done, "rowcount", 0))

    def refusal(self, provider: str) -> str | None:
        with self.runtime.sessions() as session:
            return session.scalar(
                select(MailboxGrant.refusal).where(
                    MailboxGrant.provider == provider, MailboxGrant.refused_at.is_not(None)
                )
            )

    def connected(self, provider: str) -> bool:
        with self.runtime.sessions() as session:
            return session.get(MailboxGrant, provider) is not None

    def _upsert(self, provider: str, tokens: Tokens, clear_refusal: bool) -> None:
        sealed = self._sealer.seal(
            json.dumps(
                {
                    "access_token": tokens.access_token,
                    "refresh_token": tokens.refresh_token,
                    "expires_at": tokens.expires_at.astimezone(UTC).isoformat(),
                }
            )
        )
        values: dict[str, Any] = {
            "provider": provider,
            "ciphertext": sealed,
            "expires_at": tokens.expires_at,
            "updated_at": self.runtime.clock.now(),
        }
        changed = [k for k in values if k != "provider"]
        if clear_refusal:
            values.update(refused_at=None, refusal=None)
            changed += ["refused_at", "refusal"]
        with self.runtime.writing() as session:
            dialect = session.get_bind().dialect.name
            insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(MailboxGrant).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=[MailboxGrant.provider],
                    set_={k: statement.excluded[k] for k in changed},
                )
            )
