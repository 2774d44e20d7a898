"""media — stream copies, waveforms, download renditions and their jobs (issue 12)

Revision ID: 0010_media
Revises: 0009_rights
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0010_media"
down_revision = "0009_rights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
