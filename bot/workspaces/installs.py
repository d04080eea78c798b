"""Each installed workspace's Slack bot token, read back from where its install stored it:
slack_sdk's `slack_bots` table in the main database (bot.core.models declares it, our migrations
make it), sealed by integrations.slack_install's store as it wrote it."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.models import slack_bots
from bot.core.runtime import Runtime
from bot.core.sealing import slack_token_sealer


def bot_token(main: Runtime, team_id: str) -> str | None:
    """The workspace's bot token, opened; None when it has none. The same row slack_sdk's store
    finds: the newest of this app's for the team that carries a bot token."""
    settings = main.settings
    sealer = slack_token_sealer(
        settings.secret_key.get_secret_value() if settings.secret_key else ""
    )
    bots = slack_bots.c
    query = (
        select(bots.bot_token)
        .where(
            bots.client_id == (settings.slack_client_id or ""),
            bots.enterprise_id.is_(None),
            bots.team_id == team_id,
            bots.bot_token.is_not(None),
        )
        .order_by(bots.installed_at.desc())
        .limit(1)
    )
    with main.engine.connect() as connection:
        sealed = connection.execute(query).scalar()
    return sealer.open(sealed) if sealed else None
