"""payment_reviews.slack_claimed_at: a process is posting the review to Slack now, with no
transaction open while it does; another process leaves it alone until the claim lapses.
Existing rows: unclaimed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_claimed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_reviews", schema=None) as batch_op:
        batch_op.drop_column("slack_claimed_at")
