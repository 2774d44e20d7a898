"""Migration 0017 on existing rows: a refund whose entry was reversed (failed at Stripe, which until then only
its reason text said) becomes status 'failed' (or 'canceled') with the reversal's failure reason, and its
reason is the requester's again; a booked refund stays 'booked'."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import _run_id, _with_db


@pytest.fixture
def scratch_url(server_urls):
    base = server_urls[0].replace("+psycopg", "")
    name = f"ninety_mig_{_run_id()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    if "?host=" in base:  # the embedded server over a unix socket, as the suite's own database fixture does
        yield base.split("/postgres?")[0] + f"/{name}?" + base.split("?", 1)[1]
    else:
        yield _with_db(base, name)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_reversed_refunds_get_their_status_and_failure_reason(scratch_url):
    from app.cli.core import upgrade_database
    from core.db import normalize_url

    url = normalize_url(scratch_url)
    upgrade_database(url, "0016_listening_totals")
    with psycopg.connect(scratch_url) as conn:
        conn.execute("SET session_replication_role = replica")  # rows without their orders and postings
        entries = {}
        for key, reverses, metadata in (("sale-refund:1", None, "{}"), ("sale-refund:2", None, "{}"),
                                        ("sale-refund:3", None, "{}")):
            entries[key] = conn.execute(
                "INSERT INTO ledger_entries (idempotency_key, effective_at, description, metadata, reverses_id) "
                "VALUES (%s, now(), 'refund', %s, %s) RETURNING id", (key, metadata, reverses)).fetchone()[0]
        for key, why in (("sale-refund:1", "expired_or_canceled_card"), ("sale-refund:2", "canceled")):
            conn.execute("INSERT INTO ledger_entries (idempotency_key, effective_at, description, metadata, "
                         "reverses_id) VALUES (%s, now(), 'refund failed', %s, %s)",
                         (f"refund_failed:{key}", f'{{"failure_reason": "{why}"}}', entries[key]))
        for n, reason in ((1, "Failed at Stripe (expired_or_canceled_card); Buyer asked"),
                          (2, "Failed at Stripe (canceled)"), (3, "Buyer asked")):
            conn.execute("INSERT INTO sales_refunds (order_id, stripe_refund_id, amount_micros, reason, entry_id) "
                         "VALUES (1, %s, 1000000, %s, %s)", (f"re_{n}", reason, entries[f"sale-refund:{n}"]))
        conn.commit()
    upgrade_database(url, "0017_refund_status")
    with psycopg.connect(scratch_url) as conn:
        rows = conn.execute("SELECT stripe_refund_id, status, failure_reason, reason FROM sales_refunds "
                            "ORDER BY stripe_refund_id").fetchall()
    assert rows == [("re_1", "failed", "expired_or_canceled_card", "Buyer asked"),
                    ("re_2", "canceled", "canceled", ""),
                    ("re_3", "booked", None, "Buyer asked")]
