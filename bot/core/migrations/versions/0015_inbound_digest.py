"""inbound_messages.raw_digest: the SHA-256 of a message as it came, so one with no Message-ID
delivered twice is handled once (existing rows: none; they keep their Message-ID check); and
slack_revocations: the bot tokens Slack said are dead (the app uninstalled, the token revoked),
by digest, so arbot stops calling Slack with them until a reinstall brings a new one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_inbound_messages_raw_digest"), ["raw_digest"], unique=False
        )
    op.create_table(
        "slack_revocations",
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_digest"),
    )


def downgrade() -> None:
    op.drop_table("slack_revocations")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_raw_digest"))
        batch_op.drop_column("raw_digest")
