"""payment_plans (instalments agreed with a customer for some of its invoices, recorded from an
escalation's thread) and plan_instalments (each instalment's date and amount, when it was found
paid, and when it was found missed). A customer has at most one active plan (a partial unique
index). Existing rows: none; an invoice already flagged
`payment_plan` keeps its flag and has no instalments.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import Amount, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("invoice_ids", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", Amount(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('active', 'completed', 'missed', 'cancelled')", name="payment_plan_state"
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["escalation_id"], ["escalations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_plans_customer_id", "payment_plans", ["customer_id"])
    op.create_index(
        "uq_payment_plans_one_active",
        "payment_plans",
        ["customer_id"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "plan_instalments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount", Amount(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("missed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["payment_plans.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "seq", name="plan_instalment_once"),
    )


def downgrade() -> None:
    op.drop_table("plan_instalments")
    op.drop_index("uq_payment_plans_one_active", table_name="payment_plans")
    op.drop_index("ix_payment_plans_customer_id", table_name="payment_plans")
    op.drop_table("payment_plans")
