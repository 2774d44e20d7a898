"""Listening figures: `python -m bench listening`.

1. Transcoding (bench.transcode.run: a 5-minute lossless master to every format, x real time on one core).
2. Concurrent streams against gunicorn started exactly as `ninety run` starts it (`-c python:app.gunicorn_conf`):
   LISTEN_BENCH_STREAMS (500) listeners each open a signed stream URL (`Range: bytes=0-`, as browsers ask)
   and read it at the stream's bitrate (96 kbit/s) for LISTEN_BENCH_SECONDS; time to first byte p50/p95
   and stalls (a listener whose next second of audio arrived more than a second late).
3. Play beacons (each a distinct signed play crossing 30 s, so each takes the full path: verify, bot filter,
   Redis mark, the play rows) next to a no-op endpoint, same server, same run.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import emit, fresh_database, log, redis_url

SECRET = "bench-secret-key-not-for-production-0123456789"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
STREAMS = int(os.environ.get("LISTEN_BENCH_STREAMS", "500"))
STREAM_SECONDS = int(os.environ.get("LISTEN_BENCH_SECONDS", "20"))
LOAD_SECONDS = int(os.environ.get("LISTEN_BENCH_LOAD_SECONDS", "8"))
BYTES_PER_S = 96_000 // 8
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

    app.add_url_rule("/bench/noop", "bench_noop", noop, methods=["GET", "POST"])
    return app


def _setup(db_url: str, rd_url: str, media: Path):
    """A published free track with its stream copies; (track id, stream path, listener id)."""
    from app import create_app
    from app.config import Config
    from catalog import renditions
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import create_user
    from entitlements import listening
    from tests.listening.conftest import music

    app = create_app(Config(env="test", secret_key=SECRET, database_url=db_url, redis_url=rd_url, media_root=media,
                            log_level="WARNING"))
    runtime = app.extensions["ninety"]
    session = runtime.sessions()
    try:
        user = create_user(session, email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="bench password 1",
                           roles=("artist",))
        artist = catalog.create_artist(session, user=user, name="Bench Listening")
        release = catalog.create_release(session, artist.id, title="Streams", kind="single")
        track = upload_track(session, MediaStore(media), release, io.BytesIO(music(180.0)), "01 Streams.wav",
                             clock=runtime.clock, max_bytes=None, title="Streams").track
        catalog.publish_release(session, release, clock=runtime.clock)
        session.commit()
        track_id, asset_id = track.id, track.asset_id
    finally:
        session.close()
    renditions.perform(runtime.sessions, MediaStore(media), asset_id, renditions.STREAMS)
    with runtime.sessions() as session:
        opus = renditions.stream_rendition(session, asset_id, preview=False, codec="opus")
        path = listening.stream_path(opus.sha256, opus.extension, int(time.time()) + 7200, SECRET)
    runtime.engine.dispose()
    return track_id, path


def _serve(db_url: str, rd_url: str, media: Path, var: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=rd_url, SECRET_KEY=SECRET, NINETY_ENV="test",
               LOG_LEVEL="WARNING", MEDIA_ROOT=str(media), NINETY_VAR_DIR=str(var))
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf",
                               "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
                               "bench.listening:bench_app()"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 2. concurrent streams --------------------------------------------------------------------------------
async def _listener(port: int, path: str, seconds: int, ttfb: list, stalls: list, errors: list) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\nRange: bytes=0-\r\n"
                     "Accept: audio/*\r\n\r\n".encode())  # keep-alive, as a browser's media request
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 206"):
            errors.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            writer.close()
            return
        await reader.readexactly(1)
        ttfb.append(time.monotonic() - started)
        late = 0
        for second in range(1, seconds + 1):
            await reader.readexactly(BYTES_PER_S)
            due = started + second
            now = time.monotonic()
            if now > due + 1.0:
                late += 1
            elif now < due:
                await asyncio.sleep(due - now)  # a listener reads no faster than the music plays
        stalls.append(late)
        writer.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        errors.append(repr(exc)[:120])


async def _streams(port: int, path: str, count: int, seconds: int):
    ttfb, stalls, errors = [], [], []
    tasks = []
    for _ in range(count):  # listeners arrive over about two seconds
        tasks.append(asyncio.create_task(_listener(port, path, seconds, ttfb, stalls, errors)))
        await asyncio.sleep(2.0 / count)
    await asyncio.gather(*tasks)
    return ttfb, stalls, errors


def bench_streams(port: int, path: str) -> None:
    ttfb, stalls, errors = asyncio.run(_streams(port, path, STREAMS, STREAM_SECONDS))
    ttfb_ms = sorted(t * 1000 for t in ttfb) or [float("inf")]
    p95 = ttfb_ms[int(0.95 * (len(ttfb_ms) - 1))]
    stalled = sum(1 for s in stalls if s)
    emit("listening.streams.concurrent", len(stalls), STREAMS, "higher", "streams", seconds=STREAM_SECONDS,
         bitrate_kbps=96, errors=len(errors), first_errors=errors[:3])
    emit("listening.streams.ttfb_p95_ms", p95, 100, "lower", "ms", p50=round(statistics.median(ttfb_ms), 2),
         max=round(ttfb_ms[-1], 2))
    emit("listening.streams.stalled", stalled, 0, "lower", "streams", late_seconds=sum(stalls))


# --- 3. play beacons vs the no-op ---------------------------------------------------------------------------
def _load(port: int, requests_for, threads: int = 16) -> tuple[int, float]:
    """(requests answered, seconds) for LOAD_SECONDS of `threads` clients each sending one request at a time."""
    import http.client

    stop = time.monotonic() + LOAD_SECONDS
    counts = [0] * threads

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = index
        while time.monotonic() < stop:
            method, path, body, headers = requests_for(i)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            counts[index] += 1
            i += threads
        conn.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(counts), time.monotonic() - started


def bench_beacons(port: int, track_id: int, db_url: str) -> None:
    from urllib.parse import urlencode

    import psycopg
    from itsdangerous import URLSafeSerializer

    from entitlements.listening import play_token

    # many listeners, each with plays of their own (as from many browsers): one listener's rows are not a queue
    signer = URLSafeSerializer(SECRET, salt="ninety.listener")
    issued = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    requests = []
    for _ in range(30_000):
        listener = "abench" + uuid.uuid4().hex[:16]
        token = play_token(uuid.uuid4().hex, track_id, "full", uuid.uuid4().hex, issued, listener, SECRET)
        requests.append((urlencode({"token": token, "heard_ms": 31000}),
                         {"User-Agent": UA, "Cookie": "ninety_lid=" + signer.dumps(listener),
                          "Content-Type": "application/x-www-form-urlencoded"}))

    def noop(i):
        body, headers = requests[i % len(requests)]
        return "POST", "/bench/noop", body, headers

    def beacon(i):
        body, headers = requests[i % len(requests)]
        return "POST", "/listen/beacon", body, headers

    noop_count, noop_seconds = _load(port, noop)
    noop_before = noop_count / noop_seconds
    started = time.monotonic()
    sent, _ = _load(port, beacon)
    # A beacon is answered before its report is written (app/web/listening.py): the rate counts until the last
    # play is in the database, so a backlog is no gain. Every beacon is a distinct play crossing 30 s: each counts.
    with psycopg.connect(db_url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while (counted := conn.execute("SELECT count(*) FROM plays").fetchone()[0]) < sent \
                and time.monotonic() < deadline:
            time.sleep(0.02)
    written_after = time.monotonic() - started
    beacon_rps = sent / written_after
    # The no-op again, after: the ratio is taken against the faster of the two (a no-op slowed by what ran
    # before it, the streams' connections closing, would flatter the beacons).
    noop_count, noop_seconds = _load(port, noop)
    noop_after = noop_count / noop_seconds
    noop_rps = max(noop_before, noop_after)
    emit("listening.noop_rps", noop_rps, None, "higher", "req/s", generator="python-http.client",
         before=round(noop_before, 1), after=round(noop_after, 1))
    emit("listening.beacon_rps", beacon_rps, None, "higher", "req/s", generator="python-http.client",
         beacons=sent, plays_counted=counted, seconds_until_written=round(written_after, 2))
    emit("listening.beacon_vs_noop", beacon_rps / noop_rps, 0.5, "higher", "ratio")


def main() -> None:
    try:
        from bench import transcode
    except ModuleNotFoundError:
        transcode = None
    if transcode is not None and os.environ.get("LISTEN_BENCH_TRANSCODE", "1") != "0":
        transcode.run()
    db_url = fresh_database("ninety_bench_listening")
    rd_url = redis_url(13)
    import redis as redis_lib

    redis_lib.Redis.from_url(rd_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="ninety-bench-listening-") as tmp:
        work = Path(tmp)
        track_id, path = _setup(db_url, rd_url, work / "media")
        port = _free_port()
        server = _serve(db_url, rd_url, work / "media", work / "var", port)
        try:
            for _ in range(8):  # warm every worker (imports, first connections) before measuring
                asyncio.run(_streams(port, path, 4, 1))
            log(f"{STREAMS} listeners for {STREAM_SECONDS}s at 96 kbit/s")
            bench_streams(port, path)
            bench_beacons(port, track_id, db_url)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
