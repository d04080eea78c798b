"""thread_replies: an email a person wrote to the customer from an escalation's thread. The
message itself is a reminder (sent by the outbox, exactly once); this row says which escalation
it answers and which customer message it replies to (In-Reply-To and References). Existing rows:
none.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "thread_replies",
        sa.Column("reminder_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column("in_reply_to", sa.String(length=998), nullable=True),
        sa.Column("references", sa.Text(), nullable=True),
        sa.Column("written_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reminder_id"], ["reminders.id"]),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"]),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound_messages.id"]),
        sa.PrimaryKeyConstraint("reminder_id"),
    )
    op.create_index(
        "ix_thread_replies_escalation_id", "thread_replies", ["escalation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_thread_replies_escalation_id", table_name="thread_replies")
    op.drop_table("thread_replies")
