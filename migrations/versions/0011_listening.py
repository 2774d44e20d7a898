"""listening — plays, listening sessions, full-stream allowances, the artist's "previews only" (issue 12)

- `tracks.previews_only`: the artist's choice that a priced track is only ever heard as its 30-second preview.
- `listening_sessions`: one per player session of a listener (the pre-roll ad is shown before its first play);
  `heard_ms` sums the audio heard in it, counted or not.
- `plays`: one row per counted play (30 s of audio heard), with the audio heard in that play so far
  (`heard_ms`, growing while the listener keeps listening: per-listener listening time drives a
  subscriber's pool). The primary key includes `counted_at`, so the table can be partitioned by month
  (issue 14) without changing its keys; the de-duplication does not rely on a unique index on it.
- `play_ids`: the per-play unique id table that de-duplicates beacons (a play id counts once, ever).
- `listener_track_plays`: per listener and track, how many full streams of a priced track the listener
  was given (the PREVIEW_FULL_PLAYS allowance) and how many plays counted.

Revision ID: 0011_listening
Revises: 0010_media
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_listening"
down_revision = "0010_media"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tracks", sa.Column("previews_only", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "listening_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_heard_at", TZ, nullable=False),
        sa.Column("heard_ms", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ad_decision_id", sa.String(64), nullable=True),
        sa.CheckConstraint("heard_ms >= 0", name=op.f("ck_listening_sessions_heard")),
    )
    op.create_index("ix_listening_sessions_listener_started", "listening_sessions", ["listener_id", "started_at"])

    op.create_table(
        "plays",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("play_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Integer(), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("counted_at", TZ, nullable=False),
        sa.Column("heard_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", "counted_at", name=op.f("pk_plays")),
        sa.CheckConstraint("kind IN ('full', 'preview')", name=op.f("ck_plays_kind")),
        sa.CheckConstraint("heard_ms >= 30000", name=op.f("ck_plays_heard")),
    )
    op.create_index("ix_plays_track_counted", "plays", ["track_id", "counted_at"])
    op.create_index("ix_plays_listener_counted", "plays", ["listener_id", "counted_at"])
    op.create_index("ix_plays_play_id", "plays", ["play_id"])

    op.create_table(
        "play_ids",
        sa.Column("play_id", sa.Uuid(), primary_key=True),
        sa.Column("counted_at", TZ, nullable=False),
    )

    op.create_table(
        "listener_track_plays",
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("track_id", sa.Integer(), sa.ForeignKey("tracks.id"), nullable=False),
        sa.Column("full_streams", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("counted_plays", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_session_id", sa.String(32), nullable=True),
        sa.Column("last_played_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("listener_id", "track_id", name=op.f("pk_listener_track_plays")),
        sa.CheckConstraint("full_streams >= 0 AND counted_plays >= 0", name=op.f("ck_listener_track_plays_counts")),
    )
    op.create_index("ix_listener_track_plays_track", "listener_track_plays", ["track_id"])


def downgrade() -> None:
    op.drop_table("listener_track_plays")
    op.drop_table("play_ids")
    op.drop_table("plays")
    op.drop_table("listening_sessions")
    op.drop_column("tracks", "previews_only")
