"""rights — notices, counter-notices, strikes, escrow cases, stay-down fingerprints (issue 11)

Revision ID: 0009_rights
Revises: 0008_sales
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0009_rights"
down_revision = "0008_sales"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
