"""inbound_messages.awaiting_slack: a message that matched no customer and that the finance
channel has not been told about yet (the sweep retries), and when a process claimed it to post.
Existing rows: told already.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:39:57.667634
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("awaiting_slack", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("slack_claimed_at", UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_inbound_messages_awaiting_slack"), ["awaiting_slack"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_awaiting_slack"))
        batch_op.drop_column("slack_claimed_at")
        batch_op.drop_column("awaiting_slack")
