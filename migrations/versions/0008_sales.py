"""sales — orders, purchases, webhook events, download codes, top-ups (issue 10)

Revision ID: 0008_sales
Revises: 0007_payees
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0008_sales"
down_revision = "0007_payees"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
