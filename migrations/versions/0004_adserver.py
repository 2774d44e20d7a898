"""adserver schema: advertisers, campaigns, creatives, impressions, clicks, invalid traffic, dead letters

Revision ID: 0004_adserver
Revises: 0003_catalog
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_adserver"
down_revision = "0003_catalog"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "advertisers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advertisers")),
    )
    op.create_table(
        "advertiser_members",
        sa.Column("advertiser_id", sa.Integer(), sa.ForeignKey(
            "advertisers.id", ondelete="CASCADE", name=op.f("fk_advertiser_members_advertiser_id_advertisers")),
            nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey(
            "users.id", name=op.f("fk_advertiser_members_user_id_users")), nullable=False),
        sa.PrimaryKeyConstraint("advertiser_id", "user_id", name=op.f("pk_advertiser_members")),
    )
    op.create_index(op.f("ix_advertiser_members_user_id"), "advertiser_members", ["user_id"])
    op.create_table(
        "ad_campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("advertiser_id", sa.Integer(), sa.ForeignKey(
            "advertisers.id", name=op.f("fk_ad_campaigns_advertiser_id_advertisers")), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_budget_micros", sa.BigInteger(), nullable=False),
        sa.Column("daily_budget_micros", sa.BigInteger(), nullable=False),
        sa.Column("bid_cpm_micros", sa.BigInteger(), nullable=False),
        sa.Column("pacing", sa.String(8), nullable=False),
        sa.Column("slots", postgresql.ARRAY(sa.String(16)), nullable=False),
        sa.Column("target_genres", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("target_countries", postgresql.ARRAY(sa.String(2)), nullable=False),
        sa.Column("target_modes", postgresql.ARRAY(sa.String(8)), nullable=False),
        sa.Column("frequency_cap_per_day", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("bid_cpm_micros > 0", name=op.f("ck_ad_campaigns_positive_bid")),
        sa.CheckConstraint("total_budget_micros > 0 AND daily_budget_micros > 0",
                           name=op.f("ck_ad_campaigns_positive_budgets")),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name=op.f("ck_ad_campaigns_dates_in_order")),
        sa.CheckConstraint("status IN ('draft','active','paused','ended')", name=op.f("ck_ad_campaigns_known_status")),
        sa.CheckConstraint("pacing IN ('even','asap')", name=op.f("ck_ad_campaigns_known_pacing")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_campaigns")),
    )
    op.create_index(op.f("ix_ad_campaigns_advertiser_id"), "ad_campaigns", ["advertiser_id"])
    op.create_table(
        "ad_creatives",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey(
            "ad_campaigns.id", name=op.f("fk_ad_creatives_campaign_id_ad_campaigns")), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("click_url", sa.String(2000), nullable=False),
        sa.Column("alt_text", sa.String(300), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("image_mime", sa.String(32), nullable=True),
        sa.Column("audio_sha256", sa.String(64), nullable=True),
        sa.Column("audio_mime", sa.String(32), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("review_note", sa.String(500), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), sa.ForeignKey(
            "users.id", name=op.f("fk_ad_creatives_reviewed_by_users")), nullable=True),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('display','audio')", name=op.f("ck_ad_creatives_known_kind")),
        sa.CheckConstraint("status IN ('pending','approved','rejected')", name=op.f("ck_ad_creatives_known_status")),
        sa.CheckConstraint("click_url ~ '^https?://'", name=op.f("ck_ad_creatives_http_click_url")),
        sa.CheckConstraint("kind <> 'audio' OR (audio_sha256 IS NOT NULL AND duration_ms > 0)",
                           name=op.f("ck_ad_creatives_audio_file")),
        sa.CheckConstraint("kind <> 'display' OR image_sha256 IS NOT NULL", name=op.f("ck_ad_creatives_display_image")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_creatives")),
    )
    op.create_index(op.f("ix_ad_creatives_campaign_id"), "ad_creatives", ["campaign_id"])
    op.create_table(
        "ad_impressions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("decision_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("creative_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(16), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("flushed_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("price_micros > 0", name=op.f("ck_ad_impressions_positive_price")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_impressions")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_ad_impressions_decision_id")),
    )
    op.create_index(op.f("ix_ad_impressions_campaign_id"), "ad_impressions", ["campaign_id"])
    op.create_index(op.f("ix_ad_impressions_track_id"), "ad_impressions", ["track_id"])
    op.create_table(
        "ad_clicks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("decision_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("creative_id", sa.Integer(), nullable=False),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_clicks")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_ad_clicks_decision_id")),
    )
    op.create_index(op.f("ix_ad_clicks_campaign_id"), "ad_clicks", ["campaign_id"])
    op.create_table(
        "ad_invalid_traffic",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("decision_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("creative_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_invalid_traffic")),
    )
    op.create_index(op.f("ix_ad_invalid_traffic_decision_id"), "ad_invalid_traffic", ["decision_id"])
    op.create_index(op.f("ix_ad_invalid_traffic_campaign_id"), "ad_invalid_traffic", ["campaign_id"])
    op.create_table(
        "ad_dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("fields", postgresql.JSONB(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_dead_letters")),
    )


def downgrade() -> None:
    for table in ("ad_dead_letters", "ad_invalid_traffic", "ad_clicks", "ad_impressions", "ad_creatives",
                  "ad_campaigns", "advertiser_members", "advertisers"):
        op.drop_table(table)
