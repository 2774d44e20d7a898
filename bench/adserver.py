"""Ad-server figures: `python -m bench adserver`.

1. Impression beacon through gunicorn (2 sync workers) vs a no-op Flask endpoint in the same app, same
   server, same run, loaded by `wrk` on loopback (or, when wrk is absent, a Python keep-alive load generator;
   the line says which). Every beacon carries a distinct signed decision, so each request takes the full
   path: verify, bot filter, Lua charge, stream append.
2. Flush: impressions from the Redis stream into PostgreSQL (impression rows by COPY) with their ledger
   entries (per batch, per track), through the real worker loop.
3. Pacing: a simulated day of synthetic traffic (busier evenings) against an evenly paced campaign.
4. decide() latency with 500 active campaigns, in process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis as redis_lib

from bench.common import emit, fresh_database, log, redis_url

SECRET = "bench-secret-key-not-for-production-0123456789"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
LOAD_SECONDS = int(os.environ.get("ADS_BENCH_SECONDS", "8"))
FLUSH_TOTAL = int(os.environ.get("ADS_BENCH_FLUSH", "200000"))
ROOT = Path(__file__).resolve().parent.parent


def bench_app():
    """The app gunicorn serves in the benchmark: the real app plus a no-op endpoint to compare with."""
    from flask import Response

    from app import create_app
    from app.auth import access

    app = create_app()

    @access(public=True, csrf=False)
    def noop():
        return Response(status=204)

    app.add_url_rule("/bench/noop", "bench_noop", noop)
    return app


# --- set-up -------------------------------------------------------------------------------------------------
def _runtime(db_url: str, rd_url: str, media: Path, **overrides):
    from app import create_app
    from app.config import Config
    from core.clock import FrozenClock

    clock = overrides.pop("clock", None) or FrozenClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(Config(env="test", secret_key=SECRET, database_url=db_url, redis_url=rd_url,
                            media_root=media, log_level="WARNING", **overrides), clock=clock)
    return app, app.extensions["ninety"]


def _advertiser(runtime, *, funded: int, name: str = "Bench"):
    from adserver import services as ads

    session = runtime.sessions()
    try:
        adv = ads.create_advertiser(session, name=name, currency="USD")
        ads.fund(session, runtime.redis, advertiser_id=adv.id, amount_micros=funded, currency="USD",
                 clock=runtime.clock, idempotency_key=f"bench-fund-{uuid.uuid4().hex}")
        session.commit()
        return adv.id
    finally:
        session.close()


def _campaign(runtime, advertiser_id: int, *, bid: int, daily: int, total: int, pacing: str, slots=("gate",),
              media: Path, starts_at=None):
    from adserver import services as ads
    from app.seed.ads import banner_png

    session = runtime.sessions()
    try:
        campaign = ads.create_campaign(session, runtime.redis, advertiser_id, ads.CampaignInput(
            name="Bench", starts_at=starts_at or runtime.clock.now() - timedelta(days=1), ends_at=None,
            total_budget_micros=total, daily_budget_micros=daily, bid_cpm_micros=bid, pacing=pacing,
            slots=tuple(slots)), floor_cpm_micros=0)
        creative = ads.create_creative(session, runtime.redis, campaign.id, kind="display", name="b",
                                       click_url="https://example.com/", alt_text="bench", image=banner_png(8, 8),
                                       media_root=media)
        ads.review_creative(session, runtime.redis, creative.id, approve=True, reviewer_id=None,
                            clock=runtime.clock)
        session.commit()
        return campaign.id
    finally:
        session.close()


# --- 1. beacon vs no-op through gunicorn --------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


WRK_SCRIPT = """
local tokens = {}
local counter = 0
local n = 0
-- each thread gets its own id (a global in the thread's Lua state), so no two requests share a decision
function setup(thread)
  thread:set("id", n)
  n = n + 1
end
function init(args)
  for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
  wrk.headers["User-Agent"] = "%(ua)s"
  wrk.headers["Cookie"] = "%(cookie)s"
end
function request()
  counter = counter + 1
  local i = ((counter * 4 + id) %% #tokens) + 1
  return wrk.format("GET", "%(prefix)s" .. tokens[i])
end
"""


def _wrk(port: int, path_prefix: str, tokens_file: Path | None, cookie: str, workdir: Path) -> float:
    if tokens_file is None:
        tokens_file = workdir / "one.txt"
        tokens_file.write_text("x\n")
    script = workdir / f"load-{abs(hash(path_prefix))}.lua"
    script.write_text(WRK_SCRIPT % {"tokens": tokens_file, "ua": UA, "cookie": cookie, "prefix": path_prefix})
    out = subprocess.run(["wrk", "-t4", "-c32", f"-d{LOAD_SECONDS}s", "-s", str(script),
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"could not read wrk output:\n{out}")


def _python_load(port: int, paths, cookie: str) -> float:
    """Fallback load generator: 16 threads, keep-alive http.client connections."""
    import http.client

    stop = time.monotonic() + LOAD_SECONDS
    counts = [0] * 16
    paths = list(paths)

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = index
        while time.monotonic() < stop:
            conn.request("GET", paths[i % len(paths)], headers={"User-Agent": UA, "Cookie": cookie})
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            counts[index] += 1
            i += 16
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def bench_beacon(db_url: str, rd_url: str, workdir: Path) -> None:
    from itsdangerous import URLSafeSerializer

    from adserver import stream
    from adserver.signing import Decision, sign

    app, runtime = _runtime(db_url, rd_url, workdir / "media")
    adv = _advertiser(runtime, funded=10**12)
    campaign = _campaign(runtime, adv, bid=2_000_000, daily=10**11, total=10**11, pacing="asap",
                         media=workdir / "media")
    listener = "abench" + uuid.uuid4().hex[:12]
    cookie = "ninety_lid=" + URLSafeSerializer(SECRET, salt="ninety.listener").dumps(listener)
    now = int(time.time())
    count = 400_000
    tokens = [sign(Decision(id=uuid.uuid4().hex, campaign_id=campaign, advertiser_id=adv, creative_id=1, slot="gate",
                            track_id=None, listener_id=listener, mode="gate", price_micros=2000, currency="USD",
                            issued_at=now, expires_at=now + 3600, min_view_ms=5000), SECRET) for _ in range(count)]
    tokens_file = workdir / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    runtime.engine.dispose()

    port = _free_port()
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=rd_url, SECRET_KEY=SECRET, NINETY_ENV="test",
               LOG_LEVEL="WARNING", MEDIA_ROOT=str(workdir / "media"), AD_BEACON_LIMITS="ip=1000000000,listener=1000000000")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "bench.adserver:bench_app()"], cwd=ROOT, env=env)
    try:
        _wait_for(port)
        rd = redis_lib.Redis.from_url(rd_url)
        use_wrk = shutil.which("wrk") is not None
        generator = "wrk" if use_wrk else "python-http.client"
        log(f"load generator: {generator}, {LOAD_SECONDS}s per endpoint")
        # warm both endpoints (imports, the campaign book, the bot pattern)
        import urllib.request

        for path in ("/bench/noop", f"/ads/i/{tokens[-1]}"):
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                                          headers={"User-Agent": UA, "Cookie": cookie})).read()
        if use_wrk:
            noop_rps = _wrk(port, "/bench/noop?", None, cookie, workdir)
            before = stream.length(rd)
            beacon_rps = _wrk(port, "/ads/i/", tokens_file, cookie, workdir)
        else:
            noop_rps = _python_load(port, ["/bench/noop"], cookie)
            before = stream.length(rd)
            beacon_rps = _python_load(port, [f"/ads/i/{t}" for t in tokens[:-1]], cookie)
        counted = stream.length(rd) - before
        duplicates = int(beacon_rps * LOAD_SECONDS) - counted
        invalid = len(stream.entries(rd, invalid=True))
        emit("adserver.noop_rps", noop_rps, None, "higher", "req/s", generator=generator, workers=2)
        emit("adserver.beacon_rps", beacon_rps, None, "higher", "req/s", generator=generator, workers=2,
             counted=counted, invalid=invalid, approx_duplicates=max(0, duplicates))
        emit("adserver.beacon_vs_noop", beacon_rps / noop_rps, 0.5, "higher", "ratio", generator=generator)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


# --- 2. flush -----------------------------------------------------------------------------------------------
def bench_flush(db_url: str, rd_url: str, workdir: Path) -> None:
    from catalog import services as catalog
    from catalog.models import Payee
    from core.users import create_user

    app, runtime = _runtime(db_url, rd_url, workdir / "media")
    runtime.redis.flushdb()
    session = runtime.sessions()
    tracks = []
    try:
        user = create_user(session, email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="x" * 12,
                           display_name="Bench", roles=["artist"])
        artist = catalog.create_artist(session, user=user, name="Bench Artist")
        payees = [catalog.artist_payee(session, artist.id).id]
        for i in range(2):
            payees.append(catalog.invite_payee(session, artist.id, email=f"collab{i}-{uuid.uuid4().hex[:6]}@ex.com").id)
        release = catalog.create_release(session, artist.id, title="Bench", kind="album")
        for i in range(200):
            track = catalog.add_track(session, release, title=f"T{i}", clock=runtime.clock)
            shares = [(payees[0], 7000), (payees[1], 3000)] if i % 2 else [(payees[0], 5000), (payees[1], 2500),
                                                                         (payees[2], 2500)]
            catalog.set_split_sheet(session, track, shares, clock=runtime.clock)
            tracks.append(track.id)
        session.commit()
        assert session.query(Payee).count() >= 3
    finally:
        session.close()
    advertisers = [_advertiser(runtime, funded=10**13, name=f"A{i}") for i in range(16)]
    runtime.engine.dispose()
    runtime.redis.close()
    processes = int(os.environ.get("ADS_BENCH_FLUSH_WORKERS", "2"))
    batch = int(os.environ.get("ADS_BENCH_BATCH", "20000"))
    _flush_run(db_url, rd_url, tracks, advertisers, processes, batch, "adserver.flush_impressions_per_s")
    if os.environ.get("ADS_BENCH_CLUSTER", "1") != "0" and shutil.which("redis-server"):
        from tests.cluster import RedisClusterHarness

        cluster = RedisClusterHarness(workdir / "cluster").start()
        try:
            _flush_run(db_url, cluster.url, tracks, advertisers, processes, batch,
                       "adserver.flush_cluster_impressions_per_s", redis_nodes=3)
        finally:
            cluster.stop()


def _flush_run(db_url: str, rd_url: str, tracks: list[int], advertisers: list[int], processes: int, batch: int,
               metric: str, redis_nodes: int = 1) -> None:
    """FLUSH_TOTAL impressions appended to their advertisers' shards, flushed by `processes` worker processes
    dividing the shards (royalties.worker.run_processes), end to end: stream read to committed entries."""
    from adserver import stream
    from adserver.stream import StreamImpression
    from core.redis import flush_all, make_redis
    from royalties import worker

    rd = make_redis(rd_url)
    flush_all(rd)
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        already = conn.execute("SELECT count(*) FROM ad_impressions").fetchone()[0]
    at = datetime.now(UTC)
    rng = random.Random(5)
    pipe = rd.pipeline(transaction=False)
    for i in range(FLUSH_TOTAL):
        key_mode = i % 10 == 0
        imp = StreamImpression(
            decision_id=uuid.uuid4().hex, campaign_id=1, advertiser_id=rng.choice(advertisers), creative_id=1,
            slot="browse" if key_mode else "gate", track_id=None if key_mode else rng.choice(tracks),
            listener_id=f"a{rng.randrange(50_000):08x}", mode="key" if key_mode else "gate",
            price_micros=rng.choice((500, 1237, 2500, 4000)), currency="USD", at=at)
        pipe.xadd(stream.stream_for(imp.advertiser_id), stream.encode_impression(imp))
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    worker.ensure_groups(rd)
    rd.close()
    started = time.perf_counter()
    cpu_before = os.times()
    stats = worker.run_processes(db_url, rd_url, processes=processes, consumer="bench", batch_size=batch,
                                 block_ms=50, until_idle=True)
    elapsed = time.perf_counter() - started
    cpu_after = os.times()
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM ad_impressions").fetchone()[0] - already
        entries = conn.execute("SELECT count(*) FROM ledger_entries WHERE metadata->>'event' = 'ad_flush'"
                               ).fetchone()[0]
        total_rows, total_bytes = conn.execute(
            "SELECT (SELECT count(*) FROM ad_impressions), coalesce(sum(pg_total_relation_size(inhrelid)), 0) "
            "FROM pg_inherits WHERE inhparent = 'ad_impressions'::regclass").fetchone()
    assert rows == FLUSH_TOTAL == stats.stored, (rows, stats.stored)
    worker_cpu_s = (cpu_after.children_user + cpu_after.children_system - cpu_before.children_user
                    - cpu_before.children_system)
    emit(metric, FLUSH_TOTAL / elapsed, 50_000, "higher", "impressions/s", impressions=FLUSH_TOTAL,
         batch_size=batch, worker_processes=processes, redis_nodes=redis_nodes, ledger_entries=entries,
         seconds=round(elapsed, 2), cpus=os.cpu_count(), worker_cpu_s=round(worker_cpu_s, 2),
         load_average=round(os.getloadavg()[0], 2), note="wall time includes starting the worker processes")
    if worker_cpu_s > 0:
        emit(metric.replace("_per_s", "_per_worker_cpu_s"), FLUSH_TOTAL / worker_cpu_s, None, "higher",
             "impressions/s", note="impressions per CPU-second of the worker processes (Python only; "
             "PostgreSQL and Redis not counted); independent of other load")
    if redis_nodes == 1 and total_rows:
        emit("adserver.impression_row_bytes", int(total_bytes) / total_rows, None, "lower", "bytes",
             note="ad_impressions partitions, heap + indexes + TOAST, per row")


# --- 3. pacing ----------------------------------------------------------------------------------------------
def bench_pacing(db_url: str, rd_url: str, workdir: Path) -> None:
    import math

    from adserver import keys
    from adserver import services as ads
    from core.clock import FrozenClock

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    clock = FrozenClock(day - timedelta(hours=1))
    app, runtime = _runtime(db_url, rd_url, workdir / "media", clock=clock)
    runtime.redis.flushdb()
    price = 1_000  # the runner-up's bid, per impression
    daily = 2_400 * price
    adv = _advertiser(runtime, funded=10**12)
    paced = _campaign(runtime, adv, bid=3_000_000, daily=daily, total=daily * 10, pacing="even",
                      media=workdir / "media", starts_at=day - timedelta(days=1))
    _campaign(runtime, _advertiser(runtime, funded=10**12), bid=1_000_000, daily=10**11, total=10**11, pacing="asap",
              media=workdir / "media", starts_at=day - timedelta(days=1))
    limits = ads.Limits(per_ip_per_minute=10**9, per_listener_per_minute=10**9)
    session = runtime.sessions()
    hourly = [0] * 24
    requests = 0
    rng = random.Random(11)
    try:
        clock.set(day)
        for minute in range(24 * 60):
            hour = minute // 60
            # synthetic traffic: quiet nights, busy evenings (3 to 12 requests a minute)
            per_minute = int(round(7.5 + 4.5 * math.sin((hour - 13) / 24 * 2 * math.pi))) + rng.randrange(0, 2)
            for _ in range(per_minute):
                clock.set(day + timedelta(minutes=minute, seconds=rng.randrange(60)))
                requests += 1
                placement = ads.decide(runtime.redis, session, "gate",
                                       {"listener_id": f"p{requests}", "mode": "gate"}, secret=SECRET, clock=clock,
                                       floor_cpm_micros=500_000)
                if placement is None:
                    continue
                limits_for = ads.campaign_limits(session, runtime.redis, placement.decision.campaign_id,
                                                 now=clock.now())
                result = ads.record_impression(
                    runtime.redis, placement.token,
                    ads.Visitor(ip="10.1.1.1", user_agent=UA, listener_id=f"p{requests}", headers={}),
                    secret=SECRET, clock=clock, campaign_limits=limits_for, limits=limits)
                if result.counted and placement.decision.campaign_id == paced:
                    hourly[hour] += placement.decision.price_micros
        spent = int(runtime.redis.get(keys.campaign_day(paced, keys.day(day), advertiser=adv)) or 0)
    finally:
        session.close()
    even = daily / 24
    worst = max(abs(h - even) / even for h in hourly)
    emit("adserver.pacing_daily_spend_error", abs(spent - daily) / daily * 100, 5.0, "lower", "%",
         spent_micros=spent, daily_budget_micros=daily, requests=requests)
    emit("adserver.pacing_worst_hour_deviation", worst * 100, 25.0, "lower", "%",
         hourly_impressions=[h // price for h in hourly])
    runtime.engine.dispose()


# --- 4. decide() with 500 campaigns -------------------------------------------------------------------------
def bench_decide(db_url: str, rd_url: str, workdir: Path) -> None:
    from adserver import services as ads

    app, runtime = _runtime(db_url, rd_url, workdir / "media")
    runtime.redis.flushdb()
    rng = random.Random(3)
    genres = ["ambient", "jazz", "rock", "techno", "folk", "hip-hop", "classical", "pop"]
    advertisers = [_advertiser(runtime, funded=10**12, name=f"D{i}") for i in range(20)]
    session = runtime.sessions()
    from adserver.models import Campaign, Creative
    try:
        for i in range(500):
            c = Campaign(advertiser_id=advertisers[i % 20], name=f"c{i}", status="active",
                         starts_at=runtime.clock.now() - timedelta(days=1), ends_at=None, currency="USD",
                         total_budget_micros=10**10, daily_budget_micros=10**9,
                         bid_cpm_micros=rng.randrange(500, 9000) * 1000, pacing=rng.choice(["even", "asap"]),
                         slots=["gate", "browse"], target_genres=rng.sample(genres, rng.randrange(0, 3)),
                         target_countries=[], target_modes=[], frequency_cap_per_day=rng.choice([None, 3, 10]))
            session.add(c)
            session.flush()
            session.add(Creative(campaign_id=c.id, kind="display", name="d", click_url="https://e.example/",
                                 alt_text="a", image_sha256="0" * 64, image_mime="image/png", status="approved",
                                 review_note=""))
        session.commit()
        from adserver import book

        book.bump(runtime.redis)
        timings = []
        fills = 0
        for i in range(3000):
            ctx = {"listener_id": f"d{i % 700}", "mode": "gate", "genre": rng.choice(genres)}
            started = time.perf_counter()
            placement = ads.decide(runtime.redis, session, "gate", ctx, secret=SECRET, clock=runtime.clock,
                                   floor_cpm_micros=500_000)
            timings.append(time.perf_counter() - started)
            fills += placement is not None
        timings = timings[100:]  # the first calls load the book and seed budgets
        timings.sort()
        p99 = timings[int(len(timings) * 0.99)] * 1000
        emit("adserver.decide_p99_ms", p99, 5.0, "lower", "ms", campaigns=500,
             median_ms=round(statistics.median(timings) * 1000, 3), fill_rate=round(fills / 3000, 3))
    finally:
        session.close()
        runtime.engine.dispose()


def main() -> None:
    rd_url = redis_url(15)
    with tempfile.TemporaryDirectory(prefix="ninety-bench-ads-") as tmp:
        workdir = Path(tmp)
        only = {p for p in os.environ.get("ADS_BENCH_PARTS", "").split(",") if p}
        for name, part in (("decide", bench_decide), ("pacing", bench_pacing), ("flush", bench_flush),
                           ("beacon", bench_beacon)):
            if only and name not in only:
                continue
            redis_lib.Redis.from_url(rd_url).flushdb()
            part(fresh_database(f"ninety_bench_adserver_{name}"), rd_url, workdir)
    redis_lib.Redis.from_url(rd_url).flushdb()


if __name__ == "__main__":
    main()
