"""Whether Slack still takes our bot token. When Slack says the app was uninstalled from a
workspace, or its bot token revoked, the token is dead: arbot records that (kept by a digest of the
token, never the token), stops calling Slack with it, and says so in /healthz, until a reinstall
brings a new token (which is not refused: it has another digest).

Every Slack client is made with `SlackAccess.refusal` for its token (integrations.slack_chat), so
each call site meets a clean refusal instead of an error from Slack; what it was posting waits
where it waits for any Slack failure (the plan's gap, the sweep's queue) and goes out after the
reinstall.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.db import make_engine
from bot.core.models import SlackRevocation

log = logging.getLogger(__name__)
KINDS = {
    "app_uninstalled": "Slack app uninstalled",
    "tokens_revoked": "Slack token revoked",
}
REINSTALL = "Slack app uninstalled / token revoked: reinstall"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def revocation(session: Session, token: str | None) -> SlackRevocation | None:
    """The record that `token` is dead, if Slack said so."""
    if not token:
        return None
    return session.get(SlackRevocation, token_digest(token))


def describe(revoked: SlackRevocation) -> str:
    """What /healthz and the log say: what happened, when, and what to do."""
    return (
        f"{REINSTALL} the app in workspace {revoked.team_id or '?'} and set SLACK_BOT_TOKEN to "
        f"its new bot token ({KINDS.get(revoked.kind, revoked.kind)} at "
        f"{revoked.at.isoformat()}); nothing is posted to Slack until then"
    )


def record_revoked(session: Session, token: str, team_id: str, kind: str, now: datetime) -> bool:
    """Slack said `token` is dead (`kind`: app_uninstalled or tokens_revoked): keep that, with an
    audit event, once (Slack retries its events). True the first time."""
    digest = token_digest(token)
    if session.get(SlackRevocation, digest) is not None:
        return False
    revoked = SlackRevocation(token_digest=digest, team_id=team_id, kind=kind, at=now)
    session.add(revoked)
    audit.record(session, now, f"slack.{kind}", payload={"team": team_id})
    session.flush()
    log.error("%s", describe(revoked))
    return True


class SlackAccess:
    """Answers, for a token, whether Slack may be called with it: one lookup by key in the
    database of DATABASE_URL per call (cheaper than the call to Slack it guards)."""

    _engines: ClassVar[dict[str, Engine]] = {}  # one per database, for the whole process
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, database_url: str, token: str) -> None:
        self.database_url = database_url
        self.digest = token_digest(token)

    def refusal(self) -> str | None:
        """Why Slack must not be called with this token, or None."""
        query = select(SlackRevocation).where(SlackRevocation.token_digest == self.digest)
        try:
            with Session(self._engine()) as session:
                revoked = session.scalars(query).first()
        except Exception:  # the database cannot say: Slack itself will answer
            log.warning("could not read whether the Slack token was revoked", exc_info=True)
            return None
        return describe(revoked) if revoked is not None else None

    def _engine(self) -> Engine:
        with self._lock:
            engine = self._engines.get(self.database_url)
            if engine is None:
                engine = self._engines[self.database_url] = make_engine(self.database_url)
            return engine
