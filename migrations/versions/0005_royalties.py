"""royalties and payments schema

Revision ID: 0005_royalties
Revises: 0004_adserver
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_royalties"
down_revision = "0004_adserver"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payout_methods",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payee_id", sa.Integer, sa.ForeignKey("payees.id", name="fk_payout_methods_payee_id_payees"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder_name", sa.String(140), nullable=False),
        sa.Column("iban", sa.String(34)),
        sa.Column("bic", sa.String(11)),
        sa.Column("stripe_account_id", sa.String(64)),
        sa.Column("instructions", sa.Text),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("verified_at", TZ),
        sa.Column("verified_by", sa.Integer),
        sa.Column("disabled_at", TZ),
        sa.CheckConstraint("kind IN ('stripe_connect','sepa','manual')", name="ck_payout_methods_kind"),
        sa.CheckConstraint("status IN ('pending','verified','disabled')", name="ck_payout_methods_status"),
        sa.CheckConstraint("kind <> 'sepa' OR iban IS NOT NULL", name="ck_payout_methods_sepa_has_iban"),
        sa.CheckConstraint("kind <> 'stripe_connect' OR stripe_account_id IS NOT NULL",
                           name="ck_payout_methods_connect_has_account"),
    )
    op.create_index("uq_payout_methods_current", "payout_methods", ["payee_id"], unique=True,
                    postgresql_where=sa.text("status <> 'disabled'"))

    op.create_table(
        "royalty_periods",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("cutoff", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=False),
        sa.Column("closed_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("summary", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_table(
        "royalty_pool_shares",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("track_id", sa.Integer),
        sa.Column("payee_id", sa.Integer),
        sa.Column("downloads", sa.Integer, nullable=False, server_default="0"),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.CheckConstraint("amount_micros >= 0", name="ck_royalty_pool_shares_non_negative"),
    )
    op.create_index("ix_royalty_pool_shares_listener", "royalty_pool_shares", ["period", "listener_id"])

    op.create_table(
        "royalty_payee_holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payee_id", sa.Integer, sa.ForeignKey("payees.id"), nullable=False, index=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("placed_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("placed_at", TZ, nullable=False),
        sa.Column("released_at", TZ),
        sa.Column("released_by", sa.Integer, sa.ForeignKey("users.id")),
    )
    op.create_index("uq_royalty_payee_holds_open", "royalty_payee_holds", ["payee_id"], unique=True,
                    postgresql_where=sa.text("released_at IS NULL"))

    op.create_table(
        "payout_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("period", sa.String(7), sa.ForeignKey("royalty_periods.period"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("drafted_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("drafted_at", TZ, nullable=False),
        sa.Column("approved_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("approved_at", TZ),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("cancelled_at", TZ),
        sa.Column("threshold_micros", sa.BigInteger, nullable=False),
        sa.Column("total_micros", sa.BigInteger, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.CheckConstraint("status IN ('draft','approved','executing','done','cancelled')",
                           name="ck_payout_batches_status"),
        sa.CheckConstraint("approved_by IS NULL OR approved_by <> drafted_by", name="ck_payout_batches_four_eyes"),
    )
    op.create_index("uq_payout_batches_period_currency", "payout_batches", ["period", "currency"], unique=True,
                    postgresql_where=sa.text("status <> 'cancelled'"))

    op.create_table(
        "payout_items",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("payout_batches.id"), nullable=False),
        sa.Column("payee_id", sa.Integer, sa.ForeignKey("payees.id"), nullable=False, index=True),
        sa.Column("method_id", sa.Integer, sa.ForeignKey("payout_methods.id"), nullable=False),
        sa.Column("rail", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("carried_micros", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(300), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("rail_ref", sa.String(64)),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("failure_reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payout_entry_id", sa.BigInteger),
        sa.Column("final_entry_id", sa.BigInteger),
        sa.Column("updated_at", TZ),
        sa.CheckConstraint("status IN ('pending','in_transit','settled','reversed')", name="ck_payout_items_status"),
        sa.CheckConstraint("amount_micros > 0", name="ck_payout_items_positive"),
        sa.CheckConstraint("rail IN ('stripe_connect','sepa','manual')", name="ck_payout_items_rail"),
        sa.UniqueConstraint("batch_id", "payee_id", name="uq_payout_items_batch_payee"),
    )
    op.create_index("ix_payout_items_batch_status", "payout_items", ["batch_id", "status"])

    op.create_table(
        "payout_exclusions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("payout_batches.id"), nullable=False),
        sa.Column("payee_id", sa.Integer, nullable=False, index=True),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.UniqueConstraint("batch_id", "payee_id", name="uq_payout_exclusions_batch_payee"),
    )


def downgrade() -> None:
    for table in ("payout_exclusions", "payout_items", "payout_batches", "royalty_payee_holds",
                  "royalty_pool_shares", "royalty_periods", "payout_methods"):
        op.drop_table(table)
