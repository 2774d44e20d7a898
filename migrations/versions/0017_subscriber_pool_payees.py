"""subscriber pool payees — per closed month and payee, what the subscribers' pools paid and whose (issue 13)

Revision ID: 0017_subscriber_pool_payees
Revises: 0016_listening_totals

The payee side of the subscriber pools (the dashboard's "subscribers whose money reached you", the
statement, the earnings API) read `subscriber_pool_shares` through an index on (payee_id, period). The close
writes 6,600,000 share rows in the bench, in subscriber order; keeping that index meant as many inserts at
random places in it, the close's most expensive step. Now the close also writes one row per (month,
currency, payee) into `subscriber_pool_payees`: the amount and the ids of the subscribers it came from (an
array, so that "how many subscribers ever" is a distinct count over a payee's few rows). The payee index on
the shares goes; the shares keep their (period, subscriber_id) index, which the receipt reads.
Existing closes are summed into the new table here.
"""

from alembic import op

revision = "0017_subscriber_pool_payees"
down_revision = "0016_listening_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE subscriber_pool_payees (
            period varchar(7) NOT NULL,
            currency varchar(3) NOT NULL,
            payee_id integer NOT NULL,
            amount_micros bigint NOT NULL,
            subscriber_ids integer[] NOT NULL,
            CONSTRAINT pk_subscriber_pool_payees PRIMARY KEY (payee_id, currency, period),
            CONSTRAINT ck_subscriber_pool_payees_non_negative CHECK (amount_micros >= 0)
        )""")
    op.execute("""
        INSERT INTO subscriber_pool_payees (period, currency, payee_id, amount_micros, subscriber_ids)
        SELECT period, currency, payee_id, sum(amount_micros), array_agg(DISTINCT subscriber_id ORDER BY subscriber_id)
          FROM subscriber_pool_shares WHERE kind = 'track' GROUP BY period, currency, payee_id""")
    op.execute("DROP INDEX ix_subscriber_pool_shares_payee")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_subscriber_pool_shares_payee ON subscriber_pool_shares (payee_id, period) "
               "WHERE payee_id IS NOT NULL")
    op.execute("DROP TABLE subscriber_pool_payees")
