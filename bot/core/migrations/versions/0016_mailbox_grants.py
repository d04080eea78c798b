"""mailbox_grants: the OAuth 2.0 grant of the mailbox arbot sends and reads mail as (Gmail or
Microsoft 365), one row per provider, its tokens sealed; and, when the provider refused the grant
(revoked, expired), when and why, so sending waits, the finance channel is told once and /healthz
says what to run. Kept apart from source_tokens, whose every row is a ledger source to sync.
Existing rows: none.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.core.dbtypes import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_grants",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("refused_at", UTCDateTime(), nullable=True),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("provider"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_grants")
