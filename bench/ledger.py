"""Ledger throughput: `python -m bench ledger`.

3-posting entries over 100,000 accounts chosen with Zipf-skewed access (s = 1.0; the hottest account is in
about 8% of picks), against the local PostgreSQL:
- post_many: batches of BATCH entries, one transaction each, sustained over TOTAL entries, from
  MANY_WRITERS concurrent flusher processes (2: one per core, so Python's preparation of one batch overlaps
  PostgreSQL's work on another, as the flush's worker processes do), and from a single writer for comparison;
- post: one entry per transaction, WRITERS concurrent writer processes (as 8 request workers would be);
  writers are processes, not threads, so that Python's own work is not serialized by one GIL;
- a raw COPY of the same postings into a bare table (no indexes, triggers or constraints), same run, as
  the floor the ledger is compared with; and bytes per entry on disk (heap + indexes + TOAST).
Balances are checked exact afterwards (stored balances = sums of postings, every entry balanced).
"""

from __future__ import annotations

import bisect
import itertools
import multiprocessing
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import text

from bench.common import emit, fresh_database, log
from core.db import make_engine, make_session_factory, retrying
from ledger.services import Entry, Posting, post, post_many

ACCOUNTS = 100_000
BATCH = int(os.environ.get("LEDGER_BENCH_BATCH", "8000"))
TOTAL = int(os.environ.get("LEDGER_BENCH_TOTAL", "400000"))
WRITERS = 8
MANY_WRITERS = int(os.environ.get("LEDGER_BENCH_MANY_WRITERS", "2"))
SINGLE_TOTAL = int(os.environ.get("LEDGER_BENCH_SINGLE", "12000"))
ZIPF_S = 1.0
START = datetime(2026, 11, 1, tzinfo=UTC)


def account(i: int) -> str:
    return f"liabilities:payee:{i}:payable"


class Zipf:
    def __init__(self, n: int, s: float, seed: int) -> None:
        weights = [1 / (k ** s) for k in range(1, n + 1)]
        total = sum(weights)
        self.cdf = list(itertools.accumulate(w / total for w in weights))
        self.rng = random.Random(seed)
        self.perm = list(range(n))
        random.Random(seed + 1).shuffle(self.perm)  # hot accounts scattered over ids, as in real books

    def pick(self) -> int:
        return self.perm[min(bisect.bisect_left(self.cdf, self.rng.random()), len(self.cdf) - 1)]


def make_entries(prefix: str, count: int, zipf: Zipf) -> list[Entry]:
    entries = []
    rng = zipf.rng
    for i in range(count):
        a, b, c = zipf.pick(), zipf.pick(), zipf.pick()
        amount = rng.randrange(2, 5_000_000)
        part = amount // 2
        entries.append(Entry(f"{prefix}:{i}", START + timedelta(microseconds=i), "bench", [
            Posting(account(a), "debit", amount, "USD"),
            Posting(account(b), "credit", part, "USD", "track:1"),
            Posting(account(c), "credit", amount - part, "USD", "track:2"),
        ], {"event": "bench"}))
    return entries


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def create_accounts(sessions) -> None:
    """Open all accounts up front (as a running platform has them), with one balanced entry per 1,000."""
    session = sessions()
    batch = []
    for start in range(0, ACCOUNTS, 1000):
        postings = [Posting(account(i), "credit", 1, "USD") for i in range(start, min(start + 1000, ACCOUNTS))]
        postings.append(Posting("assets:bank", "debit", len(postings), "USD"))
        batch.append(Entry(f"open:{start}", START - timedelta(days=1), "open accounts", postings))
    post_many(session, batch)
    session.execute(text("ANALYZE ledger_accounts"))
    session.commit()
    session.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a local process (a PostgreSQL backend here), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _writer_process(url: str, work: list, single: bool, ready, go, results) -> None:
    """One writer: its own engine; `work` is batches (post_many) or entries (post, one transaction each).

    Besides latencies it reports the CPU its own process and its PostgreSQL backend spent on the work, so
    that a per-core rate can be stated even when other work shares the machine."""
    engine = make_engine(url, pool_size=2)
    sessions = make_session_factory(engine)
    latencies = []
    with engine.connect() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    ready.set()
    go.wait()
    cpu0 = (os.times().user + os.times().system, _cpu_s(backend))
    for item in work:
        t0 = time.perf_counter()
        if single:
            retrying(sessions, lambda session, item=item: post(session, item))  # one commit per entry
        else:
            # the flusher owns its transaction: one commit per batch, rerun on a deadlock
            retrying(sessions, lambda session, item=item: post_many(session, item))
        latencies.append(time.perf_counter() - t0)
    cpu = (os.times().user + os.times().system - cpu0[0], _cpu_s(backend) - cpu0[1])
    results.put((latencies, cpu))
    engine.dispose()


def _run_writers(url: str, works: list[list], single: bool) -> tuple[float, list[float], tuple[float, float]]:
    """Start one process per work list (forked: the entries are built before), release them together, and
    return the wall time from release to the last commit, every latency, and the CPU seconds spent by the
    writers' Python and by their PostgreSQL backends."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    go = ctx.Event()
    readies = [ctx.Event() for _ in works]
    procs = [ctx.Process(target=_writer_process, args=(url, work, single, ready, go, results))
             for work, ready in zip(works, readies, strict=True)]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait()
    started = time.perf_counter()
    go.set()
    latencies: list[float] = []
    python_cpu = backend_cpu = 0.0
    for _ in procs:
        some, (python_s, backend_s) = results.get()
        latencies += some
        python_cpu += python_s
        backend_cpu += backend_s
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a ledger writer process failed (exit {proc.exitcode})")
    return elapsed, latencies, (python_cpu, backend_cpu)


def emit_cpu(name: str, entries: int, cpu: tuple[float, float]) -> None:
    """CPU per entry, split between the writers' Python and PostgreSQL, and the rate one core sustains."""
    python_s, backend_s = cpu
    emit(f"{name}.cpu_us_per_entry", (python_s + backend_s) / entries * 1e6, None, "lower", "us",
         python_us=round(python_s / entries * 1e6, 1), postgres_us=round(backend_s / entries * 1e6, 1),
         note="user+system CPU of the writer processes and their backends; independent of other load")
    emit(f"{name}.entries_per_core_s", entries / (python_s + backend_s), None, "higher", "entries/s",
         note="entries per CPU-second, Python and PostgreSQL together")


def bench_post_many(url: str, zipf: Zipf, writers: int, total: int, prefix: str) -> float:
    """`writers` flusher processes, each posting its own stream of batches (as the flush's workers do)."""
    entries = make_entries(prefix, total, zipf)
    batches = [[entries[o:o + BATCH] for o in range(w * BATCH, total, writers * BATCH)] for w in range(writers)]
    elapsed, latencies, cpu = _run_writers(url, batches, single=False)
    rate = total / elapsed
    name = "ledger.post_many" if writers > 1 else "ledger.post_many_1writer"
    emit_cpu(name, total, cpu)
    emit(f"{name}.entries_per_s", rate, 40_000, "higher", "entries/s", batch=BATCH, entries=total,
         accounts=ACCOUNTS, postings_per_entry=3, zipf_s=ZIPF_S, writers=writers, writer="process")
    emit(f"{name}.postings_per_s", rate * 3, 120_000, "higher", "postings/s", writers=writers)
    emit(f"{name}.batch_p50_ms", percentile(latencies, 0.5) * 1000, None, "lower", "ms", batch=BATCH)
    emit(f"{name}.batch_p99_ms", percentile(latencies, 0.99) * 1000, None, "lower", "ms", batch=BATCH)
    return rate


def bench_post(url: str, zipf_seed: int, prefix: str = "one") -> None:
    per_writer = SINGLE_TOTAL // WRITERS
    work = [make_entries(f"{prefix}{w}", per_writer, Zipf(ACCOUNTS, ZIPF_S, zipf_seed + w)) for w in range(WRITERS)]
    elapsed, flat, cpu = _run_writers(url, work, single=True)
    emit_cpu("ledger.post", len(flat), cpu)
    emit("ledger.post.entries_per_s", len(flat) / elapsed, 1_500, "higher", "entries/s", writers=WRITERS,
         entries=len(flat), writer="process")
    emit("ledger.post.p50_ms", statistics.median(flat) * 1000, None, "lower", "ms", writers=WRITERS)
    emit("ledger.post.p99_ms", percentile(flat, 0.99) * 1000, None, "lower", "ms", writers=WRITERS)


def bench_raw_copy(url: str, zipf: Zipf, ledger_rate: float) -> None:
    """COPY the same shape of postings into a bare table: the floor any PostgreSQL ledger stands on."""
    rows = []
    for i in range(TOTAL):
        amount = zipf.rng.randrange(2, 5_000_000)
        part = amount // 2
        rows.append((i, amount, zipf.pick(), 0, False, "USD", None))
        rows.append((i, part, zipf.pick(), 1, True, "USD", "track:1"))
        rows.append((i, amount - part, zipf.pick(), 2, True, "USD", "track:2"))
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE bench_raw_postings (entry_id bigint, amount_micros bigint, account_id integer, "
                     "position smallint, credit boolean, currency text, ref text)")
        conn.commit()
        started = time.perf_counter()
        for offset in range(0, len(rows), BATCH * 3):
            with conn.cursor() as cur, cur.copy(
                    "COPY bench_raw_postings FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8", "int4", "int2", "bool", "text", "text"])
                for row in rows[offset:offset + BATCH * 3]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - started
    raw_rate = len(rows) / elapsed
    emit("ledger.raw_copy.postings_per_s", raw_rate, None, "higher", "postings/s")
    emit("ledger.post_many.ratio_to_raw_copy", ledger_rate * 3 / raw_rate, None, "higher", "ratio",
         note="ledger postings/s divided by raw COPY postings/s, same run")


def disk_and_check(url: str) -> None:
    with psycopg.connect(url) as conn:
        entries = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        size = conn.execute("SELECT pg_total_relation_size('ledger_entries') + "
                            "pg_total_relation_size('ledger_postings')").fetchone()[0]
        emit("ledger.bytes_per_entry", size / entries, None, "lower", "bytes", entries=entries,
             note="entries + postings, heap + indexes")
        drift = conn.execute(
            "SELECT count(*) FROM ledger_accounts a LEFT JOIN (SELECT account_id, "
            "sum(amount_micros) FILTER (WHERE NOT credit) d, sum(amount_micros) FILTER (WHERE credit) c "
            "FROM ledger_postings GROUP BY account_id) s ON s.account_id = a.id "
            "WHERE a.debits_micros <> coalesce(s.d, 0) OR a.credits_micros <> coalesce(s.c, 0)").fetchone()[0]
        unbalanced = conn.execute(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id, currency "
            "HAVING sum(CASE WHEN credit THEN -amount_micros ELSE amount_micros END) <> 0) x").fetchone()[0]
        emit("ledger.balances_exact", int(drift == 0 and unbalanced == 0), 1, "higher", "bool",
             accounts_off=drift, entries_unbalanced=unbalanced)


def main() -> None:
    url = fresh_database("ninety_bench_ledger")
    engine = make_engine(url, pool_size=2)
    sessions = make_session_factory(engine)
    log(f"ledger bench: {ACCOUNTS} accounts, post_many {TOTAL} entries in batches of {BATCH}, "
        f"post {SINGLE_TOTAL} entries over {WRITERS} writers")
    create_accounts(sessions)
    engine.dispose()  # the writers are processes with engines of their own
    bench_post_many(url, Zipf(ACCOUNTS, ZIPF_S, 3), 1, TOTAL // 4, "one-writer")
    rate = bench_post_many(url, Zipf(ACCOUNTS, ZIPF_S, 7), MANY_WRITERS, TOTAL, "many")
    bench_post(url, 100)
    bench_raw_copy(url, Zipf(ACCOUNTS, ZIPF_S, 7), rate)
    disk_and_check(url)
    engine.dispose()


if __name__ == "__main__":
    main()
