"""subscriptions — plans, subscriptions, invoices, refunds, subscriber pool shares (issue 13)

Revision ID: 0012_subscriptions
Revises: 0011_listening
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_subscriptions"
down_revision = "0011_listening"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
LIVE = "status IN ('incomplete','active','past_due')"


VIAS = "'ad', 'key', 'purchase', 'preview', 'free'"


def _vias(allowed: str) -> None:
    for table in ("download_grants", "downloads"):
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_via")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_via CHECK (via IN ({allowed}))")


def upgrade() -> None:
    # A subscriber's free-with-ads download needs no ad: its grant says so ('subscriber').
    _vias(VIAS + ", 'subscriber'")
    op.create_table(
        "subscription_plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("price_micros", sa.BigInteger, nullable=False),
        sa.Column("interval", sa.String(8), nullable=False, server_default="month"),
        sa.Column("grace_days", sa.Integer, nullable=False, server_default="7"),
        sa.Column("stripe_product_id", sa.String(64), nullable=False),
        sa.Column("stripe_plan_id", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("price_micros > 0", name="ck_subscription_plans_positive"),
        sa.CheckConstraint("interval = 'month'", name="ck_subscription_plans_monthly"),
    )
    op.create_index("uq_subscription_plans_active_currency", "subscription_plans", ["currency"], unique=True,
                    postgresql_where=sa.text("active"))

    op.create_table(
        "subscription_customers",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("stripe_customer_id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("subscription_plans.id"), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("stripe_customer_id", sa.String(64), nullable=False),
        sa.Column("stripe_subscription_id", sa.String(64), unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_period_start", TZ),
        sa.Column("current_period_end", TZ),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("past_due_since", TZ),
        sa.Column("grace_until", TZ),
        sa.Column("canceled_at", TZ),
        sa.Column("canceled_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("ended_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('incomplete','active','past_due','canceled','incomplete_expired')",
                           name="ck_subscriptions_status"),
    )
    # Subscribing twice is refused by the database too: one live subscription per user.
    op.create_index("uq_subscriptions_live_user", "subscriptions", ["user_id"], unique=True,
                    postgresql_where=sa.text(LIVE))

    op.create_table(
        "subscription_invoices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id"), nullable=False, index=True),
        sa.Column("stripe_invoice_id", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gross_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("fee_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("pool_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("pool_period", sa.String(7)),
        sa.Column("refunded_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("period_start", TZ),
        sa.Column("period_end", TZ),
        sa.Column("paid_at", TZ),
        sa.Column("failed_at", TZ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stripe_payment_intent", sa.String(64)),
        sa.Column("entry_id", sa.BigInteger),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('open','paid','failed','void')", name="ck_subscription_invoices_status"),
        sa.CheckConstraint("refunded_micros >= 0 AND refunded_micros <= gross_micros",
                           name="ck_subscription_invoices_refund_bounded"),
        sa.CheckConstraint("fee_micros >= 0 AND pool_micros >= 0", name="ck_subscription_invoices_non_negative"),
    )

    op.create_table(
        "subscription_refunds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("subscription_invoices.id"), nullable=False, index=True),
        sa.Column("stripe_refund_id", sa.String(64), nullable=False, unique=True),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("pool_micros", sa.BigInteger, nullable=False),
        sa.Column("recouped", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("entry_id", sa.BigInteger),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("amount_micros > 0 AND pool_micros >= 0 AND pool_micros <= amount_micros",
                           name="ck_subscription_refunds_amounts"),
    )

    op.create_table(
        "subscriber_pool_shares",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("track_id", sa.Integer),
        sa.Column("payee_id", sa.Integer),
        sa.Column("listened_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("empty_months", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.CheckConstraint("kind IN ('track','carried','unattributed')", name="ck_subscriber_pool_shares_kind"),
        sa.CheckConstraint("amount_micros >= 0", name="ck_subscriber_pool_shares_non_negative"),
        sa.CheckConstraint("(kind = 'track') = (payee_id IS NOT NULL)", name="ck_subscriber_pool_shares_payee"),
    )
    op.create_index("ix_subscriber_pool_shares_subscriber", "subscriber_pool_shares", ["period", "subscriber_id"])
    op.create_index("ix_subscriber_pool_shares_payee", "subscriber_pool_shares", ["payee_id", "period"],
                    postgresql_where=sa.text("payee_id IS NOT NULL"))


def downgrade() -> None:
    op.execute("DELETE FROM downloads WHERE via = 'subscriber'")
    op.execute("DELETE FROM download_grants WHERE via = 'subscriber'")
    _vias(VIAS)
    op.drop_table("subscriber_pool_shares")
    op.drop_table("subscription_refunds")
    op.drop_table("subscription_invoices")
    op.drop_index("uq_subscriptions_live_user", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscription_customers")
    op.drop_index("uq_subscription_plans_active_currency", table_name="subscription_plans")
    op.drop_table("subscription_plans")
