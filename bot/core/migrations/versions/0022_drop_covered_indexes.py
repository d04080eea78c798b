"""Drop two indexes another one already covers: invoices' customer_id index repeats the leading
column of UNIQUE(customer_id, number), and payment_allocations' payment_id index that of
UNIQUE(payment_id, invoice_id). Lookups by customer or by payment use the unique index; each
invoice or allocation written no longer updates a second index for the same column. Existing
rows: unchanged.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_invoices_customer_id", table_name="invoices")
    op.drop_index("ix_payment_allocations_payment_id", table_name="payment_allocations")


def downgrade() -> None:
    op.create_index(
        "ix_payment_allocations_payment_id", "payment_allocations", ["payment_id"], unique=False
    )
    op.create_index("ix_invoices_customer_id", "invoices", ["customer_id"], unique=False)
