"""partitions — impression, invalid-traffic, play and download rows partitioned by month (issue 14)

Revision ID: 0013_partitions
Revises: 0012_subscriptions

Declarative range partitioning by the row's time (UTC months): `ad_impressions.at`, `ad_invalid_traffic.at`,
`plays.counted_at`, `downloads.completed_at`. Each table is rebuilt as a partitioned table with the same
name, columns, defaults, checks, indexes and foreign keys, one partition per month that holds rows (and the
current and next two months), and a DEFAULT partition for rows of any other month; existing rows are moved.
The primary key gains the partition column (PostgreSQL requires every unique index of a partitioned table
to include it).

Unique-by-id still holds across months, in small key tables filled by a statement-level trigger in the same
statement as the rows: `ad_impression_decisions` (decision id → month; a redelivered impression is refused
whatever month it claims) and `download_grant_uses` (a grant is downloaded once). Plays already de-duplicate
through `play_ids` (0011).

`ninety_month_partition(parent, column, month)` creates a month's partition when it is missing (moving any
of its rows out of the DEFAULT partition); the flush calls it before writing a new month. A closed month's
partition can be detached into the `archive` schema (`ninety ads archive-month`) without touching the books.
"""

from alembic import op
from sqlalchemy import text

revision = "0013_partitions"
down_revision = "0012_subscriptions"
branch_labels = None
depends_on = None

# table -> (partition column, the unique index replaced by a key table, that key table's DDL and trigger body)
TABLES = {
    "ad_impressions": ("at", "uq_ad_impressions_decision_id"),
    "ad_invalid_traffic": ("at", None),
    "plays": ("counted_at", None),
    "downloads": ("completed_at", "uq_downloads_grant_id"),
}

FUNCTIONS = r"""
CREATE FUNCTION ninety_month_partition(parent regclass, part_column text, month date) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    first_day timestamp := date_trunc('month', month::timestamp);
    from_at timestamptz := first_day AT TIME ZONE 'UTC';
    to_at timestamptz := (first_day + interval '1 month') AT TIME ZONE 'UTC';
    base text := (SELECT relname FROM pg_class WHERE oid = parent);
    name text := base || '_' || to_char(first_day, 'YYYY_MM');
    fallback text := base || '_default';
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN to_regclass(quote_ident(name));
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ninety_month_partition:' || base));
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN to_regclass(quote_ident(name));
    END IF;
    -- rows of that month that went to the DEFAULT partition move into the month's own partition
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %I', parent, fallback);
    EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', name, parent, from_at, to_at);
    PERFORM set_config('ninety.moving_rows', 'on', true);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) '
                   'INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM moved',
                   fallback, part_column, from_at, part_column, to_at, parent);
    PERFORM set_config('ninety.moving_rows', 'off', true);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I DEFAULT', parent, fallback);
    RETURN to_regclass(quote_ident(name));
END $$;

CREATE TABLE ad_impression_decisions (
    decision_id uuid NOT NULL,
    at timestamptz NOT NULL,
    CONSTRAINT pk_ad_impression_decisions PRIMARY KEY (decision_id)
);
CREATE FUNCTION ad_impressions_unique_decision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('ninety.moving_rows', true), '') <> 'on' THEN
        INSERT INTO ad_impression_decisions (decision_id, at) SELECT decision_id, at FROM new_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TABLE download_grant_uses (
    grant_id varchar(32) NOT NULL,
    CONSTRAINT pk_download_grant_uses PRIMARY KEY (grant_id)
);
CREATE FUNCTION downloads_unique_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('ninety.moving_rows', true), '') <> 'on' THEN
        INSERT INTO download_grant_uses (grant_id) SELECT grant_id FROM new_rows WHERE grant_id IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
"""

KEY_TABLES = {
    "ad_impressions": ("INSERT INTO ad_impression_decisions (decision_id, at) SELECT decision_id, at FROM {old}",
                       "ad_impressions_unique_decision"),
    "downloads": ("INSERT INTO download_grant_uses (grant_id) SELECT grant_id FROM {old} WHERE grant_id IS NOT NULL",
                  "downloads_unique_grant"),
}


def _rows(sql: str, **params):
    return op.get_bind().execute(text(sql), params).fetchall()


def _partition(table: str, column: str, replaced_unique: str | None) -> None:
    old = f"{table}_unpartitioned"
    indexes = _rows("SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary, x.indisunique "
                    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass)",
                    t=table)
    primary = _rows("SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid "
                    "AND a.attnum = ANY(x.indkey) WHERE x.indrelid = CAST(:t AS regclass) AND x.indisprimary "
                    "ORDER BY array_position(x.indkey::int2[], a.attnum)", t=table)
    foreign = _rows("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'", t=table)
    owned = _rows("SELECT a.attname, pg_get_serial_sequence(:t, a.attname), a.attidentity "
                  "FROM pg_attribute a WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 "
                  "AND NOT a.attisdropped", t=table)
    months = [row[0] for row in _rows(
        f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC')::date FROM {table} "
        "UNION SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month')::date "
        "FROM generate_series(0, 2) n ORDER BY 1")]

    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name, _, is_primary, is_unique in indexes:
        op.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_old"')
    for name, _ in foreign:
        op.execute(f'ALTER TABLE {old} RENAME CONSTRAINT "{name}" TO "{name[:55]}_old"')
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY "
               f"INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({column})")
    key = [name for (name,) in primary]
    if column not in key:
        key.append(column)
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(key)})")
    for name, definition, is_primary, is_unique in indexes:
        if is_primary or name == replaced_unique:
            continue
        if is_unique:
            raise RuntimeError(f"{table}: unique index {name} has no partition-wide equivalent")
        op.execute(definition)  # names the table, which now is the partitioned one
    for name, definition in foreign:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for month in months:
        op.execute(f"CREATE TABLE {table}_{month:%Y_%m} PARTITION OF {table} FOR VALUES FROM "
                   f"('{month:%Y-%m-01} 00:00:00+00') TO ('{_next(month):%Y-%m-01} 00:00:00+00')")
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {old}")
    for name, sequence, identity in owned:
        if sequence is None:
            continue
        if identity:  # the new table has an identity sequence of its own: continue after the moved rows
            op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), "
                       f"coalesce((SELECT max({name}) FROM {table}), 0) + 1, false)")
        else:  # a serial: the sequence moves to the new column (the old table's drop would take it)
            op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{name}")
    if table in KEY_TABLES:
        fill, function = KEY_TABLES[table]
        op.execute(fill.format(old=old))
        op.execute(f"CREATE TRIGGER {function} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
    op.execute(f"DROP TABLE {old}")
    op.execute(f"ANALYZE {table}")


def _next(month):
    return month.replace(year=month.year + 1, month=1) if month.month == 12 else month.replace(month=month.month + 1)


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute("CREATE SCHEMA IF NOT EXISTS archive")
    for table, (column, replaced_unique) in TABLES.items():
        _partition(table, column, replaced_unique)


UNIQUES = {"ad_impressions": "ALTER TABLE ad_impressions ADD CONSTRAINT uq_ad_impressions_decision_id "
                             "UNIQUE (decision_id)",
           "downloads": "ALTER TABLE downloads ADD CONSTRAINT uq_downloads_grant_id UNIQUE (grant_id)"}
PRIMARY = {"ad_impressions": "id", "ad_invalid_traffic": "id", "plays": "id, counted_at", "downloads": "id"}


def _unpartition(table: str) -> None:
    old = f"{table}_partitioned"
    indexes = _rows("SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary "
                    "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass)",
                    t=table)
    foreign = _rows("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'", t=table)
    owned = _rows("SELECT a.attname, pg_get_serial_sequence(:t, a.attname), a.attidentity "
                  "FROM pg_attribute a WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 "
                  "AND NOT a.attisdropped", t=table)
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name, _, _ in indexes:
        op.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_old"')
    for name, _ in foreign:
        op.execute(f'ALTER TABLE {old} RENAME CONSTRAINT "{name}" TO "{name[:55]}_old"')
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY "
               "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)")
    op.execute(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {old}")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({PRIMARY[table]})")
    for name, definition, is_primary in indexes:
        if not is_primary:
            op.execute(definition)
    for name, definition in foreign:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    if table in UNIQUES:
        op.execute(UNIQUES[table])
    for name, sequence, identity in owned:
        if sequence is None:
            continue
        if identity:
            op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), "
                       f"coalesce((SELECT max({name}) FROM {table}), 0) + 1, false)")
        else:
            op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{name}")
    op.execute(f"DROP TABLE {old} CASCADE")


def downgrade() -> None:
    for table in TABLES:
        _unpartition(table)
    op.execute("DROP FUNCTION ad_impressions_unique_decision() CASCADE")
    op.execute("DROP FUNCTION downloads_unique_grant() CASCADE")
    op.execute("DROP TABLE ad_impression_decisions, download_grant_uses")
    op.execute("DROP FUNCTION ninety_month_partition(regclass, text, date)")
