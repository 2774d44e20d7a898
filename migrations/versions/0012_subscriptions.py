"""subscriptions — plans, subscriptions, invoices, subscriber pools (issue 13)

Revision ID: 0012_subscriptions
Revises: 0011_listening
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0012_subscriptions"
down_revision = "0011_listening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
