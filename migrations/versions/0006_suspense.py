"""suspense: flush entries the ledger refused, parked with their reason until finance settles them

Revision ID: 0006_suspense
Revises: 0005_royalties
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_suspense"
down_revision = "0005_royalties"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "royalty_parked_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("campaign_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("impressions", sa.Integer(), nullable=False),
        sa.Column("decision_ids", postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
        sa.Column("entry", postgresql.JSONB(), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parked_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("status", sa.String(12), server_default="parked", nullable=False),
        sa.Column("settled_at", TZ, nullable=True),
        sa.Column("settled_by", sa.Integer(), sa.ForeignKey("users.id", name="fk_royalty_parked_entries_settled_by_users"),
                  nullable=True),
        sa.Column("settled_entry_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount_micros > 0", name=op.f("ck_royalty_parked_entries_positive_amount")),
        sa.CheckConstraint("status IN ('parked','retried','written_off')", name=op.f("ck_royalty_parked_entries_known_status")),
        sa.CheckConstraint("(status = 'parked') = (settled_entry_id IS NULL)",
                           name=op.f("ck_royalty_parked_entries_settled_has_entry")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_royalty_parked_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_royalty_parked_entries_idempotency_key")),
    )
    op.create_index("ix_royalty_parked_entries_unsettled", "royalty_parked_entries", ["period"],
                    postgresql_where=sa.text("status = 'parked'"))


def downgrade() -> None:
    op.drop_index("ix_royalty_parked_entries_unsettled", table_name="royalty_parked_entries")
    op.drop_table("royalty_parked_entries")
