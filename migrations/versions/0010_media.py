"""media — stream copies, waveforms, download renditions and their jobs (issue 12)

`media_renditions`: files made from an audio asset (stream and preview copies, waveform, download
transcodes), one per (asset, kind), each stored under its own SHA-256. `media_jobs`: the background job
per (asset, purpose) with its progress and, when it failed, the reason.

Revision ID: 0010_media
Revises: 0009_rights
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_media"
down_revision = "0009_rights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_renditions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("audio_assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("mime", sa.String(64), nullable=False),
        sa.Column("extension", sa.String(8), nullable=False),
        sa.Column("codec", sa.String(32), nullable=False, server_default=""),
        sa.Column("bitrate", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sample_rate", sa.Integer, nullable=False, server_default="0"),
        sa.Column("channels", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("bits_per_sample", sa.SmallInteger),
        sa.Column("duration_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("asset_id", "kind", name=op.f("uq_media_renditions_asset_kind")),
    )
    op.create_table(
        "media_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("audio_assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="queued"),
        sa.Column("progress", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("step", sa.String(40), nullable=False, server_default=""),
        sa.Column("attempts", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error_detail", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("asset_id", "purpose", name=op.f("uq_media_jobs_asset_purpose")),
        sa.CheckConstraint("status IN ('queued', 'running', 'retrying', 'done', 'failed')", name=op.f("ck_media_jobs_status")),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_media_jobs_progress_range")),
    )


def downgrade() -> None:
    op.drop_table("media_jobs")
    op.drop_table("media_renditions")
