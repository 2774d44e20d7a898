"""catalog schema: artists, payees, releases, tracks, audio assets, split sheets, grants, downloads

Revision ID: 0003_catalog
Revises: 0002_ledger
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_catalog"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None

# The database refuses a split sheet whose shares do not sum to exactly 10,000 basis points, checked at
# commit (deferred) so a sheet and its shares can be written in one transaction.
SPLIT_SUM_TRIGGER = """
CREATE FUNCTION catalog_check_split_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sheet integer;
    total bigint;
BEGIN
    IF TG_TABLE_NAME = 'split_sheets' THEN
        sheet := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        sheet := OLD.sheet_id;
    ELSE
        sheet := NEW.sheet_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM split_sheets WHERE id = sheet) THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(share_bp), 0) INTO total FROM split_shares WHERE sheet_id = sheet;
    IF total <> 10000 THEN
        RAISE EXCEPTION 'split sheet % shares sum to % basis points, not 10000', sheet, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER split_shares_sum AFTER INSERT OR UPDATE OR DELETE ON split_shares
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_check_split_sum();
CREATE CONSTRAINT TRIGGER split_sheets_sum AFTER INSERT ON split_sheets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_check_split_sum();
"""


def upgrade() -> None:
    op.create_table('artists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('bio', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('links', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=True),
    sa.Column('image_mime', sa.String(length=40), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_artists')),
    sa.UniqueConstraint('slug', name=op.f('uq_artists_slug'))
    )
    op.create_table('audio_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('codec', sa.String(length=32), nullable=False),
    sa.Column('mime', sa.String(length=64), nullable=False),
    sa.Column('extension', sa.String(length=8), nullable=False),
    sa.Column('duration_ms', sa.BigInteger(), nullable=False),
    sa.Column('bitrate', sa.Integer(), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('channels', sa.SmallInteger(), nullable=False),
    sa.Column('bits_per_sample', sa.SmallInteger(), nullable=True),
    sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audio_assets')),
    sa.UniqueConstraint('sha256', name=op.f('uq_audio_assets_sha256'))
    )
    op.create_table('artist_members',
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_artist_members_artist_id_artists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_artist_members_user_id_users')),
    sa.PrimaryKeyConstraint('artist_id', 'user_id', name=op.f('pk_artist_members'))
    )
    op.create_index(op.f('ix_artist_members_user_id'), 'artist_members', ['user_id'], unique=False)
    op.create_table('payees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('artist_id', sa.Integer(), nullable=True),
    sa.Column('invited_by_artist_id', sa.Integer(), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('user_id IS NOT NULL OR artist_id IS NOT NULL OR email IS NOT NULL', name=op.f('ck_payees_identified')),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_payees_artist_id_artists')),
    sa.ForeignKeyConstraint(['invited_by_artist_id'], ['artists.id'], name=op.f('fk_payees_invited_by_artist_id_artists')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_payees_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payees')),
    sa.UniqueConstraint('artist_id', name=op.f('uq_payees_artist_id'))
    )
    op.create_index(op.f('ix_payees_email'), 'payees', ['email'], unique=False)
    op.create_index(op.f('ix_payees_invited_by_artist_id'), 'payees', ['invited_by_artist_id'], unique=False)
    op.create_index(op.f('ix_payees_user_id'), 'payees', ['user_id'], unique=False)
    op.create_table('releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('release_date', sa.Date(), nullable=True),
    sa.Column('genre', sa.String(length=60), nullable=False),
    sa.Column('tags', sa.ARRAY(sa.String(length=60)), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('cover_sha256', sa.String(length=64), nullable=True),
    sa.Column('cover_mime', sa.String(length=40), nullable=True),
    sa.Column('upc', sa.String(length=14), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('publish_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('price_model', sa.String(length=16), nullable=False),
    sa.Column('price_micros', sa.BigInteger(), nullable=True),
    sa.Column('min_price_micros', sa.BigInteger(), nullable=True),
    sa.Column('suggested_price_micros', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('single', 'ep', 'album')", name=op.f('ck_releases_kind')),
    sa.CheckConstraint("price_model IN ('free_with_ads', 'fixed', 'name_your_price')", name=op.f('ck_releases_price_model')),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'published', 'taken_down')", name=op.f('ck_releases_status')),
    sa.CheckConstraint('min_price_micros IS NULL OR min_price_micros > 0', name=op.f('ck_releases_min_positive')),
    sa.CheckConstraint('price_micros IS NULL OR price_micros > 0', name=op.f('ck_releases_price_positive')),
    sa.CheckConstraint('suggested_price_micros IS NULL OR suggested_price_micros >= min_price_micros', name=op.f('ck_releases_suggested_over_min')),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_releases_artist_id_artists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_releases')),
    sa.UniqueConstraint('artist_id', 'slug', name='uq_releases_artist_slug')
    )
    op.create_index(op.f('ix_releases_artist_id'), 'releases', ['artist_id'], unique=False)
    op.create_index('ix_releases_published', 'releases', ['published_at', 'id'], unique=False, postgresql_where="status = 'published'")
    op.create_index('ix_releases_scheduled', 'releases', ['publish_at'], unique=False, postgresql_where="status = 'scheduled'")
    op.create_table('tracks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('isrc', sa.String(length=12), nullable=True),
    sa.Column('explicit', sa.Boolean(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('original_filename', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('price_model', sa.String(length=16), nullable=True),
    sa.Column('price_micros', sa.BigInteger(), nullable=True),
    sa.Column('min_price_micros', sa.BigInteger(), nullable=True),
    sa.Column('suggested_price_micros', sa.BigInteger(), nullable=True),
    sa.Column('search_vector', postgresql.TSVECTOR(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("price_model IS NULL OR price_model IN ('free_with_ads', 'fixed', 'name_your_price')", name=op.f('ck_tracks_price_model')),
    sa.CheckConstraint("status IN ('draft', 'published', 'taken_down')", name=op.f('ck_tracks_status')),
    sa.CheckConstraint('min_price_micros IS NULL OR min_price_micros > 0', name=op.f('ck_tracks_min_positive')),
    sa.CheckConstraint('position > 0', name=op.f('ck_tracks_position_positive')),
    sa.CheckConstraint('price_micros IS NULL OR price_micros > 0', name=op.f('ck_tracks_price_positive')),
    sa.ForeignKeyConstraint(['asset_id'], ['audio_assets.id'], name=op.f('fk_tracks_asset_id_audio_assets')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_tracks_release_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracks'))
    )
    op.create_index(op.f('ix_tracks_asset_id'), 'tracks', ['asset_id'], unique=False)
    op.create_index(op.f('ix_tracks_release_id'), 'tracks', ['release_id'], unique=False)
    op.create_index('ix_tracks_search', 'tracks', ['search_vector'], unique=False, postgresql_using='gin')
    op.create_table('download_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('listener_id', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('decision_id', sa.String(length=64), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("via IN ('ad', 'key', 'purchase', 'preview', 'free')", name=op.f('ck_download_grants_via')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_download_grants_track_id_tracks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_download_grants'))
    )
    op.create_index(op.f('ix_download_grants_track_id'), 'download_grants', ['track_id'], unique=False)
    op.create_table('split_sheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_split_sheets_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_split_sheets_track_id_tracks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split_sheets')),
    sa.UniqueConstraint('track_id', 'version', name='uq_split_sheets_track_version')
    )
    op.create_index('ix_split_sheets_track_effective', 'split_sheets', ['track_id', 'effective_at'], unique=False)
    op.create_table('downloads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('listener_id', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=10), nullable=False),
    sa.Column('grant_id', sa.String(length=32), nullable=True),
    sa.Column('decision_id', sa.String(length=64), nullable=True),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("via IN ('ad', 'key', 'purchase', 'preview', 'free')", name=op.f('ck_downloads_via')),
    sa.ForeignKeyConstraint(['grant_id'], ['download_grants.id'], name=op.f('fk_downloads_grant_id_download_grants')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_downloads_track_id_tracks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_downloads')),
    sa.UniqueConstraint('grant_id', name=op.f('uq_downloads_grant_id'))
    )
    op.create_index('ix_downloads_listener_completed', 'downloads', ['listener_id', 'completed_at'], unique=False)
    op.create_index('ix_downloads_track_completed', 'downloads', ['track_id', 'completed_at'], unique=False)
    op.create_table('split_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('payee_id', sa.Integer(), nullable=False),
    sa.Column('share_bp', sa.Integer(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('role', sa.String(length=60), nullable=False),
    sa.CheckConstraint('share_bp > 0 AND share_bp <= 10000', name=op.f('ck_split_shares_share_range')),
    sa.ForeignKeyConstraint(['payee_id'], ['payees.id'], name=op.f('fk_split_shares_payee_id_payees')),
    sa.ForeignKeyConstraint(['sheet_id'], ['split_sheets.id'], name=op.f('fk_split_shares_sheet_id_split_sheets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split_shares')),
    sa.UniqueConstraint('sheet_id', 'payee_id', name='uq_split_shares_sheet_payee')
    )
    op.create_index(op.f('ix_split_shares_payee_id'), 'split_shares', ['payee_id'], unique=False)
    op.execute(SPLIT_SUM_TRIGGER)


def downgrade() -> None:
    for table in ("downloads", "download_grants", "split_shares", "split_sheets", "tracks", "releases",
                  "payees", "artist_members", "audio_assets", "artists"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS catalog_check_split_sum()")
