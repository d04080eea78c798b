"""invoice_documents: each invoice's PDF copy as its source gave it, kept per version of the
invoice (a digest of its facts: a changed invoice fetches again, so no stale copy is sent);
reminder_attachments: which invoices' copies a reminder carries; invoices.document_url: the
ledger CSV's `pdf_url`, where a CSV invoice's copy is fetched from.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_url", sa.String(length=2048), nullable=True))
    op.create_table(
        "invoice_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_id", "version", name="invoice_document_version"),
    )
    op.create_table(
        "reminder_attachments",
        sa.Column("reminder_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.ForeignKeyConstraint(["reminder_id"], ["reminders.id"]),
        sa.PrimaryKeyConstraint("reminder_id", "invoice_id"),
    )


def downgrade() -> None:
    op.drop_table("reminder_attachments")
    op.drop_table("invoice_documents")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("document_url")
