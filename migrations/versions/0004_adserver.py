"""adserver schema

Revision ID: 0004_adserver
Revises: 0003_catalog
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_adserver"
down_revision = "0003_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the adserver work


def downgrade() -> None:
    pass
