"""subscriber pool receipts — one row per subscriber and month instead of one per track (issue 13)

Revision ID: 0018_subscriber_pool_receipts
Revises: 0017_refund_status

At a month close every subscriber's pool is split over the tracks that subscriber played. Until now each
part was one `subscriber_pool_shares` row: 6,600,000 rows with three indexes for the bench's 200,000
subscribers, and writing them was most of the close (80 s of 200 s). Now:

- `subscriber_pool_receipts` holds one row per (subscriber, month, currency): what the pool held, whether it
  went to tracks, was carried on or went to income:unattributed, and for tracks the parts as parallel arrays
  (track, payee, counted listening, held, amount), one element per track and payee. It is what the
  subscriber's receipt and a refund's recoup read, by primary key.
- `subscriber_pool_payees` holds one row per (payee, month, currency, track): what subscribers' pools paid the
  payee for the track and which subscribers they were, so the dashboard and the statement count "subscribers
  whose money reached you" in a month or ever from the payee's own rows, without scanning every part.
- `subscriber_pool_shares` becomes a view that unnests the receipts, one row per part as before, so a reader
  of single parts (and SQL written against it) keeps working.
- `ninety_allocate(total, weights)`: the largest-remainder split of `core.money.allocate` (ties to the
  earlier position), which the close uses for split sheets with several payees.

Existing shares are moved into the two tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_subscriber_pool_receipts"
down_revision = "0017_refund_status"
branch_labels = None
depends_on = None

_VIEW = """
    CREATE VIEW subscriber_pool_shares AS
    SELECT r.period, r.currency, r.subscriber_id, r.kind, coalesce(u.position, 1)::int AS position,
           u.track_id, u.payee_id, coalesce(u.listened_ms, 0)::bigint AS listened_ms, r.empty_months,
           coalesce(u.held, false) AS held, coalesce(u.amount_micros, r.amount_micros)::bigint AS amount_micros
      FROM subscriber_pool_receipts r
      LEFT JOIN LATERAL unnest(r.track_ids, r.payee_ids, r.listened_ms, r.held, r.amounts)
           WITH ORDINALITY AS u(track_id, payee_id, listened_ms, held, amount_micros, position) ON true
"""

# core.money.allocate in SQL: floor(total * w / sum) each, the units left over one each to the largest
# remainders, ties to the earlier position. NULL for an empty or all-zero weights array (allocate raises).
_ALLOCATE = """
    CREATE FUNCTION ninety_allocate(total bigint, weights bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        weight_sum numeric;
        parts bigint[];
        i int;
    BEGIN
        IF total < 0 THEN
            RETURN (SELECT array_agg(-p ORDER BY n) FROM unnest(ninety_allocate(-total, weights))
                    WITH ORDINALITY AS x(p, n));
        END IF;
        SELECT sum(w) INTO weight_sum FROM unnest(weights) AS w;
        IF weight_sum IS NULL OR weight_sum = 0 THEN
            RETURN NULL;
        END IF;
        SELECT array_agg(floor(total::numeric * w / weight_sum)::bigint ORDER BY n) INTO parts
          FROM unnest(weights) WITH ORDINALITY AS x(w, n);
        FOR i IN
            SELECT n FROM unnest(weights) WITH ORDINALITY AS x(w, n)
             ORDER BY mod(total::numeric * w, weight_sum) DESC, n
             LIMIT total - (SELECT sum(p) FROM unnest(parts) AS p)
        LOOP
            parts[i] := parts[i] + 1;
        END LOOP;
        RETURN parts;
    END $$
"""


def upgrade() -> None:
    op.create_table(
        "subscriber_pool_receipts",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("empty_months", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("track_ids", sa.ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("payee_ids", sa.ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("listened_ms", sa.ARRAY(sa.BigInteger), nullable=False, server_default="{}"),
        sa.Column("held", sa.ARRAY(sa.Boolean), nullable=False, server_default="{}"),
        sa.Column("amounts", sa.ARRAY(sa.BigInteger), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("subscriber_id", "period", "currency", name="pk_subscriber_pool_receipts"),
        sa.CheckConstraint("kind IN ('track','carried','unattributed')", name="ck_subscriber_pool_receipts_kind"),
        sa.CheckConstraint("amount_micros > 0", name="ck_subscriber_pool_receipts_positive"),
        sa.CheckConstraint(
            "cardinality(payee_ids) = cardinality(track_ids) AND cardinality(listened_ms) = cardinality(track_ids) "
            "AND cardinality(held) = cardinality(track_ids) AND cardinality(amounts) = cardinality(track_ids) "
            "AND (kind = 'track') = (cardinality(track_ids) > 0)", name="ck_subscriber_pool_receipts_parts"),
    )
    op.create_table(
        "subscriber_pool_payees",
        sa.Column("payee_id", sa.Integer, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("subscriber_ids", sa.ARRAY(sa.Integer), nullable=False),
        sa.PrimaryKeyConstraint("payee_id", "period", "currency", "track_id", name="pk_subscriber_pool_payees"),
    )
    op.execute(_ALLOCATE)
    op.execute("""
        INSERT INTO subscriber_pool_receipts (subscriber_id, period, currency, kind, empty_months, amount_micros,
                                              track_ids, payee_ids, listened_ms, held, amounts)
        SELECT subscriber_id, period, currency, min(kind), max(empty_months), sum(amount_micros),
               coalesce(array_agg(track_id ORDER BY id) FILTER (WHERE kind = 'track'), '{}'),
               coalesce(array_agg(payee_id ORDER BY id) FILTER (WHERE kind = 'track'), '{}'),
               coalesce(array_agg(listened_ms ORDER BY id) FILTER (WHERE kind = 'track'), '{}'),
               coalesce(array_agg(held ORDER BY id) FILTER (WHERE kind = 'track'), '{}'),
               coalesce(array_agg(amount_micros ORDER BY id) FILTER (WHERE kind = 'track'), '{}')
          FROM subscriber_pool_shares WHERE amount_micros > 0
         GROUP BY subscriber_id, period, currency""")
    op.execute("""
        INSERT INTO subscriber_pool_payees (payee_id, period, currency, track_id, amount_micros, subscriber_ids)
        SELECT payee_id, period, currency, track_id, sum(amount_micros),
               array_agg(DISTINCT subscriber_id ORDER BY subscriber_id)
          FROM subscriber_pool_shares WHERE kind = 'track' AND amount_micros > 0
         GROUP BY payee_id, period, currency, track_id""")
    op.drop_table("subscriber_pool_shares")
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW subscriber_pool_shares")
    op.create_table(
        "subscriber_pool_shares",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("track_id", sa.Integer),
        sa.Column("payee_id", sa.Integer),
        sa.Column("listened_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("empty_months", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.CheckConstraint("kind IN ('track','carried','unattributed')", name="ck_subscriber_pool_shares_kind"),
        sa.CheckConstraint("amount_micros >= 0", name="ck_subscriber_pool_shares_non_negative"),
        sa.CheckConstraint("(kind = 'track') = (payee_id IS NOT NULL)", name="ck_subscriber_pool_shares_payee"),
    )
    op.create_index("ix_subscriber_pool_shares_subscriber", "subscriber_pool_shares", ["period", "subscriber_id"])
    op.create_index("ix_subscriber_pool_shares_payee", "subscriber_pool_shares", ["payee_id", "period"],
                    postgresql_where=sa.text("payee_id IS NOT NULL"))
    op.execute("""
        INSERT INTO subscriber_pool_shares (period, currency, subscriber_id, kind, track_id, payee_id, listened_ms,
                                            empty_months, held, amount_micros)
        SELECT r.period, r.currency, r.subscriber_id, r.kind, u.track_id, u.payee_id, coalesce(u.listened_ms, 0),
               r.empty_months, coalesce(u.held, false), coalesce(u.amount_micros, r.amount_micros)
          FROM subscriber_pool_receipts r
          LEFT JOIN LATERAL unnest(r.track_ids, r.payee_ids, r.listened_ms, r.held, r.amounts)
               WITH ORDINALITY AS u(track_id, payee_id, listened_ms, held, amount_micros, position) ON true
         ORDER BY r.period, r.subscriber_id, r.currency, u.position""")
    op.drop_table("subscriber_pool_payees")
    op.drop_table("subscriber_pool_receipts")
    op.execute("DROP FUNCTION ninety_allocate(bigint, bigint[])")
