"""partition race — two flush workers creating the same month's partition at once (issue 14)

Revision ID: 0014_partition_race
Revises: 0013_partitions

`ninety_month_partition` checked for the partition before and after taking its advisory lock, but the second
check went through the relation cache, which a concurrent creator's commit had not yet invalidated, so the
second worker tried to create the partition again ("relation already exists"). It now takes the lock first
and looks the partition up in pg_class with a statement of its own (a fresh snapshot, taken after the other
creator committed), and treats "already exists" as done.
"""

from alembic import op

revision = "0014_partition_race"
down_revision = "0013_partitions"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION ninety_month_partition(parent regclass, part_column text, month date) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    first_day timestamp := date_trunc('month', month::timestamp);
    from_at timestamptz := first_day AT TIME ZONE 'UTC';
    to_at timestamptz := (first_day + interval '1 month') AT TIME ZONE 'UTC';
    base text := (SELECT relname FROM pg_class WHERE oid = parent);
    name text := base || '_' || to_char(first_day, 'YYYY_MM');
    fallback text := base || '_default';
    found regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ninety_month_partition:' || base));
    SELECT c.oid::regclass INTO found FROM pg_class c
     WHERE c.relname = name AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = parent);
    IF found IS NOT NULL THEN
        RETURN found;
    END IF;
    BEGIN
        -- rows of that month that went to the DEFAULT partition move into the month's own partition
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %I', parent, fallback);
        EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', name, parent, from_at,
                       to_at);
        PERFORM set_config('ninety.moving_rows', 'on', true);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) '
                       'INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM moved',
                       fallback, part_column, from_at, part_column, to_at, parent);
        PERFORM set_config('ninety.moving_rows', 'off', true);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I DEFAULT', parent, fallback);
    EXCEPTION WHEN duplicate_table THEN
        NULL;  -- created by another session meanwhile: everything above was rolled back, the partition exists
    END;
    RETURN to_regclass(quote_ident(name));
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    pass  # the 0013 body is equivalent save for the race; nothing to restore
