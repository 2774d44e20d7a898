"""royalties and payments schema

Revision ID: 0005_royalties
Revises: 0004_adserver
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_royalties"
down_revision = "0004_adserver"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the royalties and payments work


def downgrade() -> None:
    pass
