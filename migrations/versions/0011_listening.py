"""listening — plays, listening sessions, preview allowances (issue 12)

Revision ID: 0011_listening
Revises: 0010_media
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0011_listening"
down_revision = "0010_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
