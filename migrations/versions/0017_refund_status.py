"""refund status — a booked refund that failed or was canceled at Stripe says so in a column (issue 10)

Revision ID: 0017_refund_status
Revises: 0016_listening_totals

A refund Stripe could not complete (`refund.failed`, `charge.refund.updated` failed or canceled) has its entry
mirrored by `sales.fulfilment.reverse_failed_refund`; until now only the refund's reason text said so
("Failed at Stripe (...); ..."). `sales_refunds` gains `status` ('booked', 'failed' or 'canceled') and
`failure_reason` (Stripe's, e.g. expired_or_canceled_card), and the reason goes back to being the requester's.
Existing rows: a refund whose entry has been reversed is 'failed' (or 'canceled', when that is the reason the
reversal recorded), with the reversal's failure reason, and the prefix is taken off its reason.
"""

from alembic import op

revision = "0017_refund_status"
down_revision = "0016_listening_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sales_refunds ADD COLUMN status varchar(8) NOT NULL DEFAULT 'booked', "
               "ADD COLUMN failure_reason varchar(120)")
    op.execute("ALTER TABLE sales_refunds ADD CONSTRAINT ck_sales_refunds_status "
               "CHECK (status IN ('booked', 'failed', 'canceled'))")
    op.execute("""
        UPDATE sales_refunds r
           SET status = CASE WHEN x.metadata->>'failure_reason' = 'canceled' THEN 'canceled' ELSE 'failed' END,
               failure_reason = left(x.metadata->>'failure_reason', 120),
               reason = regexp_replace(r.reason, '^Failed at Stripe \\([^)]*\\)(; )?', '')
          FROM ledger_entries x
         WHERE x.reverses_id = r.entry_id""")


def downgrade() -> None:
    op.execute("""
        UPDATE sales_refunds SET reason = left('Failed at Stripe (' || coalesce(failure_reason, status) || ')'
                                               || CASE WHEN reason <> '' THEN '; ' || reason ELSE '' END, 300)
         WHERE status <> 'booked'""")
    op.execute("ALTER TABLE sales_refunds DROP CONSTRAINT ck_sales_refunds_status")
    op.execute("ALTER TABLE sales_refunds DROP COLUMN failure_reason, DROP COLUMN status")
