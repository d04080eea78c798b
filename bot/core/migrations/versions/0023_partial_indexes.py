"""Make three indexes partial, leaving out the rows whose column is empty: events' invoice_id and
reminder_id, and reminders' (slack_channel, slack_ts). Most rows written in bulk have one of them
empty: a stored plan's events name no invoice and its reminders are not in Slack yet, an imported
ledger's or bank file's events name no reminder. Every query on these columns asks for a value
(`=`, `IN`, `IS NOT NULL`), which implies the index's condition on SQLite and PostgreSQL alike, so
each still uses it. Existing rows: unchanged; each index is built again without the empty ones.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns, the column that must hold a value)
PARTIAL = (
    ("ix_events_invoice_id", "events", ["invoice_id"], "invoice_id"),
    ("ix_events_reminder_id", "events", ["reminder_id"], "reminder_id"),
    ("ix_reminders_slack_message", "reminders", ["slack_channel", "slack_ts"], "slack_ts"),
)


def upgrade() -> None:
    for name, table, columns, column in PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, table, columns, _column in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False)
