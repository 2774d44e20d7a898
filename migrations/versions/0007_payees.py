"""payees: payout methods are confirmed out of band; a new one waits beside the verified one

A payee may have one verified method (the one payouts use) and one pending method (a replacement waiting
for its email confirmation and its rail check). `confirmed_at` records the email confirmation; methods
verified before this revision count as confirmed.

Revision ID: 0007_payees
Revises: 0006_suspense
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_payees"
down_revision = "0006_suspense"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payout_methods", sa.Column("confirmed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE payout_methods SET confirmed_at = coalesce(verified_at, created_at) WHERE status = 'verified'")
    op.drop_index("uq_payout_methods_current", table_name="payout_methods")
    op.create_index("uq_payout_methods_verified", "payout_methods", ["payee_id"], unique=True,
                    postgresql_where=sa.text("status = 'verified'"))
    op.create_index("uq_payout_methods_pending", "payout_methods", ["payee_id"], unique=True,
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.execute("""UPDATE payout_methods p SET status = 'disabled', disabled_at = now()
                   WHERE status = 'pending' AND EXISTS (SELECT 1 FROM payout_methods v
                                                         WHERE v.payee_id = p.payee_id AND v.status = 'verified')""")
    op.drop_index("uq_payout_methods_pending", table_name="payout_methods")
    op.drop_index("uq_payout_methods_verified", table_name="payout_methods")
    op.create_index("uq_payout_methods_current", "payout_methods", ["payee_id"], unique=True,
                    postgresql_where=sa.text("status <> 'disabled'"))
    op.drop_column("payout_methods", "confirmed_at")
