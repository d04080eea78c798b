"""message_versions: a version per posted plan message, so a redraw never goes back in time (the
redraws asked for, the newest claimed for drawing, and the lease of the one worker drawing it);
and the indexes that find a day's reminders and a message's cards without reading every
reminder. Existing rows: none; a message gets its row at its first redraw.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("wanted", sa.Integer(), nullable=False),
        sa.Column("drawn", sa.Integer(), nullable=False),
        sa.Column("drawing_since", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "ts", name="message_version_once"),
    )
    op.create_index("ix_reminders_plan_date", "reminders", ["plan_date", "slack_ts"])
    op.create_index("ix_reminders_slack_message", "reminders", ["slack_channel", "slack_ts"])


def downgrade() -> None:
    op.drop_index("ix_reminders_slack_message", table_name="reminders")
    op.drop_index("ix_reminders_plan_date", table_name="reminders")
    op.drop_table("message_versions")
