"""catalog schema

Revision ID: 0003_catalog
Revises: 0002_ledger
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_catalog"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the catalog work


def downgrade() -> None:
    pass
