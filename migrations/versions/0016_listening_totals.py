"""listening totals — each listener's counted listening per track and month, kept as plays are written (issue 13)

Revision ID: 0016_listening_totals
Revises: 0015_rights_fingerprint

The month close shares each subscriber's pool by the listening time of their full plays in that month. It
read that by grouping every play of the month (20,000,000 in the bench: 45 s, spilling to disk). Now
`listening_totals` holds, per (month, listener, track), the sum of `plays.heard_ms` and the number of plays,
and the close reads it instead (one row per listener and track: 6,600,000 in the bench).

The totals are kept by statement-level triggers on `plays` (insert, update, delete), which see every changed
row through transition tables and apply one grouped upsert per statement: the beacon batch's one statement,
a seed's INSERT ... SELECT or a test's ORM flush all keep them right, and a growing play (its `heard_ms`
rises with later reports) adds only what is new. The month is the UTC month of `counted_at`, as the close's
bounds are. Existing plays are summed into the table here.
"""

from alembic import op

revision = "0016_listening_totals"
down_revision = "0015_rights_fingerprint"
branch_labels = None
depends_on = None

# One grouped upsert from the rows a statement changed; `sign` adds (new rows) or takes away (old rows).
_APPLY = """
    INSERT INTO listening_totals AS t (period, listener_id, track_id, heard_ms, plays)
    SELECT to_char(x.counted_at AT TIME ZONE 'UTC', 'YYYY-MM'), x.listener_id, x.track_id,
           sum(x.heard_ms), count(*)
      FROM {rows} x WHERE x.kind = 'full'
     GROUP BY 1, 2, 3
    ON CONFLICT (period, listener_id, track_id) DO UPDATE
       SET heard_ms = t.heard_ms {op} excluded.heard_ms, plays = t.plays {op} excluded.plays
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE listening_totals (
            period char(7) NOT NULL,
            listener_id varchar(64) NOT NULL,
            track_id integer NOT NULL,
            heard_ms bigint NOT NULL,
            plays integer NOT NULL,
            CONSTRAINT pk_listening_totals PRIMARY KEY (period, listener_id, track_id)
        )""")
    op.execute(f"""
        CREATE FUNCTION ninety_listening_totals() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_APPLY.format(rows="new_rows", op="+")};
            ELSIF TG_OP = 'DELETE' THEN
                {_APPLY.format(rows="old_rows", op="-")};
            ELSE  -- an update: what the changed rows add, less what they held (matched by the primary key)
                INSERT INTO listening_totals AS t (period, listener_id, track_id, heard_ms, plays)
                SELECT period, listener_id, track_id, sum(heard_ms), sum(plays) FROM (
                    SELECT to_char(n.counted_at AT TIME ZONE 'UTC', 'YYYY-MM') AS period, n.listener_id,
                           n.track_id, n.heard_ms::bigint AS heard_ms, 1 AS plays
                      FROM new_rows n WHERE n.kind = 'full'
                    UNION ALL
                    SELECT to_char(o.counted_at AT TIME ZONE 'UTC', 'YYYY-MM'), o.listener_id, o.track_id,
                           -o.heard_ms::bigint, -1
                      FROM old_rows o WHERE o.kind = 'full') d
                 GROUP BY 1, 2, 3
                HAVING sum(heard_ms) <> 0 OR sum(plays) <> 0
                ON CONFLICT (period, listener_id, track_id) DO UPDATE
                   SET heard_ms = t.heard_ms + excluded.heard_ms, plays = t.plays + excluded.plays;
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER plays_totals_insert AFTER INSERT ON plays REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION ninety_listening_totals()")
    op.execute("CREATE TRIGGER plays_totals_update AFTER UPDATE ON plays "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION ninety_listening_totals()")
    op.execute("CREATE TRIGGER plays_totals_delete AFTER DELETE ON plays REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION ninety_listening_totals()")
    op.execute("""
        INSERT INTO listening_totals (period, listener_id, track_id, heard_ms, plays)
        SELECT to_char(counted_at AT TIME ZONE 'UTC', 'YYYY-MM'), listener_id, track_id, sum(heard_ms), count(*)
          FROM plays WHERE kind = 'full' GROUP BY 1, 2, 3""")


def downgrade() -> None:
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER plays_totals_{name} ON plays")
    op.execute("DROP FUNCTION ninety_listening_totals()")
    op.execute("DROP TABLE listening_totals")
