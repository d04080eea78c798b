"""control_holdout and control_assignments: the randomized holdout of ARBOT_CONTROL_SHARE.

`control_holdout` is one row: the installation's salt (drawn once, never changed: a customer's
draw is a hash of it and the customer's id), the share in force and since when. Each customer in
the pilot's scope gets one `control_assignments` row the first time a plan meets it while a
holdout runs: its group (`control`: observed only; `followed`: arbot follows it up), when, and the
share in force then. A row is never changed afterwards, so a changed share applies to new
customers only. Existing rows: none (nobody is assigned until ARBOT_CONTROL_SHARE is set).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import Amount, UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "control_holdout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("share", Amount(), nullable=False),
        sa.Column("share_since", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name="control_holdout_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "control_assignments",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("grp", sa.String(length=16), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("share", Amount(), nullable=False),
        sa.CheckConstraint("grp IN ('control', 'followed')", name="control_assignment_group"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_control_assignments_grp", "control_assignments", ["grp"])


def downgrade() -> None:
    op.drop_index("ix_control_assignments_grp", table_name="control_assignments")
    op.drop_table("control_assignments")
    op.drop_table("control_holdout")
