"""sales — orders, refunds, disputes, webhook events, download codes, top-ups (issue 10)

An order's amounts are checked by the database too: never negative, never refunded (or disputed) beyond
what was paid, a code redemption is an order at 0 with no payment.

Revision ID: 0008_sales
Revises: 0007_payees
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sales"
down_revision = "0007_payees"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "sales_orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("buyer_user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_sales_orders_buyer_user_id_users"),
                  nullable=False),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artists.id", name="fk_sales_orders_artist_id_artists"),
                  nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id", name="fk_sales_orders_release_id_releases"),
                  nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", name="fk_sales_orders_track_id_tracks")),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("fee_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("disputed_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("payment_intent_id", sa.String(64)),
        sa.Column("sale_entry_id", sa.BigInteger),
        sa.Column("failure_reason", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('sale', 'code')", name="ck_sales_orders_kind"),
        sa.CheckConstraint("status IN ('pending', 'paid', 'failed', 'canceled')", name="ck_sales_orders_status"),
        sa.CheckConstraint("amount_micros >= 0 AND fee_micros >= 0 AND refunded_micros >= 0 "
                           "AND disputed_micros >= 0", name="ck_sales_orders_amounts_non_negative"),
        sa.CheckConstraint("refunded_micros + disputed_micros <= amount_micros",
                           name="ck_sales_orders_not_over_refunded"),
        sa.CheckConstraint("kind <> 'sale' OR amount_micros > 0", name="ck_sales_orders_sale_positive"),
        sa.CheckConstraint("kind <> 'code' OR (amount_micros = 0 AND payment_intent_id IS NULL)",
                           name="ck_sales_orders_code_free"),
        sa.UniqueConstraint("payment_intent_id", name="uq_sales_orders_payment_intent_id"),
    )
    op.create_index("ix_sales_orders_buyer", "sales_orders", ["buyer_user_id", "status"])
    op.create_index("ix_sales_orders_artist", "sales_orders", ["artist_id", "created_at"])
    op.create_index("ix_sales_orders_release_id", "sales_orders", ["release_id"])
    op.create_index("ix_sales_orders_track_id", "sales_orders", ["track_id"])

    op.create_table(
        "sales_refunds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("sales_orders.id", name="fk_sales_refunds_order_id_sales_orders"),
                  nullable=False),
        sa.Column("stripe_refund_id", sa.String(64), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("requested_by_user_id", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_sales_refunds_requested_by_user_id_users")),
        sa.Column("reason", sa.String(300), nullable=False, server_default=""),
        sa.Column("entry_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("amount_micros > 0", name="ck_sales_refunds_positive"),
        sa.UniqueConstraint("stripe_refund_id", name="uq_sales_refunds_stripe_refund_id"),
    )
    op.create_index("ix_sales_refunds_order_id", "sales_refunds", ["order_id"])

    op.create_table(
        "sales_disputes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("sales_orders.id", name="fk_sales_disputes_order_id_sales_orders"),
                  nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("fee_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("entry_id", sa.BigInteger, nullable=False),
        sa.Column("restore_entry_id", sa.BigInteger),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('open', 'won', 'lost')", name="ck_sales_disputes_status"),
        sa.CheckConstraint("amount_micros > 0 AND fee_micros >= 0", name="ck_sales_disputes_amounts"),
        sa.UniqueConstraint("order_id", name="uq_sales_disputes_order_id"),
    )

    op.create_table(
        "stripe_webhook_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(255)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )

    op.create_table(
        "sales_download_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("release_id", sa.Integer,
                  sa.ForeignKey("releases.id", name="fk_sales_download_codes_release_id_releases"), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("batch", sa.String(40), nullable=False),
        sa.Column("created_by_user_id", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_sales_download_codes_created_by_user_id_users"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_by_user_id", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_sales_download_codes_redeemed_by_user_id_users")),
        sa.Column("redeemed_at", sa.DateTime(timezone=True)),
        sa.Column("order_id", sa.Integer,
                  sa.ForeignKey("sales_orders.id", name="fk_sales_download_codes_order_id_sales_orders")),
        sa.CheckConstraint("(redeemed_at IS NULL) = (redeemed_by_user_id IS NULL)",
                           name="ck_sales_download_codes_redeemed_together"),
        sa.UniqueConstraint("code", name="uq_sales_download_codes_code"),
    )
    op.create_index("ix_sales_download_codes_release", "sales_download_codes", ["release_id", "batch"])

    op.create_table(
        "sales_topups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("advertiser_id", sa.Integer,
                  sa.ForeignKey("advertisers.id", name="fk_sales_topups_advertiser_id_advertisers"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_sales_topups_user_id_users"),
                  nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("fee_micros", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("payment_intent_id", sa.String(64)),
        sa.Column("entry_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'paid', 'failed')", name="ck_sales_topups_status"),
        sa.CheckConstraint("amount_micros > 0 AND fee_micros >= 0", name="ck_sales_topups_amounts"),
        sa.UniqueConstraint("payment_intent_id", name="uq_sales_topups_payment_intent_id"),
    )
    op.create_index("ix_sales_topups_advertiser_id", "sales_topups", ["advertiser_id"])


def downgrade() -> None:
    for table in ("sales_topups", "sales_download_codes", "stripe_webhook_events", "sales_disputes",
                  "sales_refunds", "sales_orders"):
        op.drop_table(table)
