"""Migration 0018 on existing rows: the per-track `subscriber_pool_shares` rows of earlier closes become one
receipt per subscriber and month and one row per payee and month; the view of the same name gives back the
very rows that were there (and a downgrade puts them back in a table)."""

from __future__ import annotations

import psycopg

from tests.sales.test_refund_status_migration import scratch_url  # noqa: F401 - the scratch database fixture

SHARES = [  # period, currency, subscriber, kind, track, payee, listened_ms, empty_months, held, amount
    ("2026-09", "USD", 7, "track", 11, 101, 60_000, 0, False, 2_000_000),
    ("2026-09", "USD", 7, "track", 12, 101, 30_000, 0, False, 1_000_000),
    ("2026-09", "USD", 7, "track", 12, 102, 30_000, 0, True, 500_000),
    ("2026-09", "USD", 8, "track", 11, 101, 90_000, 0, False, 3_500_000),
    ("2026-09", "USD", 9, "carried", None, None, 0, 1, False, 3_500_000),
    ("2026-10", "USD", 7, "track", 12, 102, 10_000, 0, False, 4_000_000),
    ("2026-10", "USD", 9, "carried", None, None, 0, 2, False, 7_000_000),
]


def _shares(conn) -> list[tuple]:
    return conn.execute(
        "SELECT period, currency, subscriber_id, kind, track_id, payee_id, listened_ms, empty_months, held, "
        "amount_micros FROM subscriber_pool_shares ORDER BY period, subscriber_id, track_id, payee_id").fetchall()


def test_shares_become_receipts_and_payee_rows_and_read_back_the_same(scratch_url):  # noqa: F811
    from alembic import command

    from app.cli.core import alembic_config, upgrade_database
    from core.db import normalize_url

    url = normalize_url(scratch_url)
    upgrade_database(url, "0017_refund_status")
    with psycopg.connect(scratch_url) as conn:
        for row in SHARES:
            conn.execute("INSERT INTO subscriber_pool_shares (period, currency, subscriber_id, kind, track_id, "
                         "payee_id, listened_ms, empty_months, held, amount_micros) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
        conn.commit()
        before = _shares(conn)
    upgrade_database(url, "0018_subscriber_pool_receipts")
    with psycopg.connect(scratch_url) as conn:
        receipts = conn.execute(
            "SELECT period, subscriber_id, kind, empty_months, amount_micros, track_ids, payee_ids, held, amounts "
            "FROM subscriber_pool_receipts ORDER BY period, subscriber_id").fetchall()
        assert receipts == [
            ("2026-09", 7, "track", 0, 3_500_000, [11, 12, 12], [101, 101, 102], [False, False, True],
             [2_000_000, 1_000_000, 500_000]),
            ("2026-09", 8, "track", 0, 3_500_000, [11], [101], [False], [3_500_000]),
            ("2026-09", 9, "carried", 1, 3_500_000, [], [], [], []),
            ("2026-10", 7, "track", 0, 4_000_000, [12], [102], [False], [4_000_000]),
            ("2026-10", 9, "carried", 2, 7_000_000, [], [], [], []),
        ]
        payees = conn.execute("SELECT payee_id, period, track_id, amount_micros, subscriber_ids "
                              "FROM subscriber_pool_payees ORDER BY payee_id, period, track_id").fetchall()
        assert payees == [(101, "2026-09", 11, 5_500_000, [7, 8]), (101, "2026-09", 12, 1_000_000, [7]),
                          (102, "2026-09", 12, 500_000, [7]), (102, "2026-10", 12, 4_000_000, [7])]
        assert _shares(conn) == before  # the view reads the parts back as they were
    command.downgrade(alembic_config(url), "0017_refund_status")  # and the downgrade makes them a table again
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'subscriber_pool_shares'").fetchone() == ("r",)
        assert _shares(conn) == before
