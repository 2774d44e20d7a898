"""Catalog performance: `python -m bench catalog`.

- inspection: a 500 MB WAV upload streamed through the upload path (SHA-256 while writing to storage, then
  inspection: mutagen's header, then FFmpeg measuring every sample; PCM is demuxed), MB/s and the process's
  peak RSS growth while doing it;
- decode check: 10 minutes of noisy music-like audio encoded as FLAC, MP3 and Opus, inspected (decoded to
  the end); MB/s, times real time, and RSS growth, per codec;
- search: 100,000 published tracks (2,000 artists, 20,000 releases) loaded with COPY, then 400 queries of
  one to three words (whole words, prefixes, artist names) through catalog.search.search_tracks; p50/p95
  per query, measured around the call (SQL round trip and Python);
- download: a 100 MB file fetched through the app served by gunicorn on loopback (sendfile via
  wsgi.file_wrapper, ranges too), by one connection and by two connections fetching a half each with
  Range (as download managers do), compared with `cat file > /dev/null` on the same (page-cached) file;
  medians of 7 runs. The client reads into a reused buffer, so the figure is the server's.
"""

from __future__ import annotations

import http.client
import io
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import emit, fresh_database, log, peak_rss_mb, redis_url
from core.db import make_engine, make_session_factory

DB_NAME = "ninety_bench_catalog"
TRACKS = int(os.environ.get("CATALOG_BENCH_TRACKS", "100000"))
UPLOAD_MB = int(os.environ.get("CATALOG_BENCH_UPLOAD_MB", "500"))
DOWNLOAD_MB = int(os.environ.get("CATALOG_BENCH_DOWNLOAD_MB", "100"))
QUERIES = 400
ROUNDS = int(os.environ.get("CATALOG_BENCH_ROUNDS", "9"))
SECRET = "bench-secret-key-0123456789abcdef0123456789"


# --- a WAV of any size, generated as it is read (the input never sits in memory or on disk) ---------------
class WavStream(io.RawIOBase):
    def __init__(self, data_bytes: int, rate: int = 44100, channels: int = 2) -> None:
        self.header = (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
                       + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
                       + b"data" + struct.pack("<I", data_bytes))
        self.total = len(self.header) + data_bytes
        self.pos = 0
        block = bytearray()
        for i in range(4096):
            sample = int(8000 * ((i % 100) / 50 - 1))
            block += struct.pack("<hh", sample, sample)
        self.block = bytes(block) * 64  # 1 MiB of a saw wave

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pos >= self.total:
            return 0
        view = memoryview(buffer)
        n = min(len(view), self.total - self.pos)
        written = 0
        while written < n:
            if self.pos < len(self.header):
                chunk = self.header[self.pos:self.pos + n - written]
            else:
                offset = (self.pos - len(self.header)) % len(self.block)
                chunk = self.block[offset:offset + n - written]
            view[written:written + len(chunk)] = chunk
            written += len(chunk)
            self.pos += len(chunk)
        return n


class RssSampler:
    """The largest resident-set growth over the baseline while the block runs (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
        self.growth_mb = 0.0
        self._stop = threading.Event()

    def _rss_mb(self) -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page_mb

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.growth_mb = max(self.growth_mb, self._rss_mb() - self.baseline)

    def __enter__(self):
        self.baseline = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.growth_mb = max(self.growth_mb, self._rss_mb() - self.baseline)


def bench_inspection(workdir: Path) -> None:
    from catalog.storage import MediaStore
    from catalog.uploads import receive_and_inspect

    store = MediaStore(workdir / "media-inspect")
    size = UPLOAD_MB * 1024 * 1024
    receive_and_inspect(store, WavStream(8 * 1024 * 1024), max_bytes=None)[0].discard()  # warm up
    sampler = RssSampler()
    before_peak = peak_rss_mb()
    with sampler:
        started = time.perf_counter()
        pending, info = receive_and_inspect(store, WavStream(size), max_bytes=None)
        elapsed = time.perf_counter() - started
    growth = max(sampler.growth_mb, peak_rss_mb() - before_peak)
    pending.discard()
    rate = size / (1024 * 1024) / elapsed
    emit("catalog.upload_inspect_mb_per_s", rate, 200.0, "higher", "MB/s", file_mb=UPLOAD_MB,
         format=info.format, duration_s=round(info.duration_s, 1))
    emit("catalog.upload_peak_rss_growth_mb", growth, 50.0, "lower", "MB", file_mb=UPLOAD_MB)


DECODE_MINUTES = float(os.environ.get("CATALOG_BENCH_DECODE_MINUTES", "10"))


def _encode_noise(path: Path, container: str, codec: str, rate: int, seconds: float) -> None:
    """A tone under noise (FLAC compresses it like real music, ~70 %), encoded with PyAV chunk by chunk."""
    import av
    import numpy as np

    rng = np.random.default_rng(9)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        size = stream.codec_context.frame_size or 4608
        sample_format = stream.codec_context.format.name
        total = int(seconds * rate)
        for start in range(0, total, size):
            n = min(size, total - start)
            t = np.arange(start, start + n) / rate
            wave = 0.25 * np.sin(2 * np.pi * 220 * t) + 0.15 * rng.standard_normal(n)
            planes = np.clip(np.stack([wave, wave[::-1]]), -1, 1).astype(np.float32)
            if sample_format.startswith("s16"):
                planes = (planes * 32767).astype(np.int16)
            elif sample_format.startswith("s32"):
                planes = (planes * 2_147_000_000).astype(np.int32)
            if not sample_format.endswith("p"):
                planes = planes.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(planes, format=sample_format, layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def bench_decode_check(workdir: Path) -> None:
    from catalog.inspection import inspect_file

    seconds = DECODE_MINUTES * 60
    for kind, container, codec, rate in (("flac", "flac", "flac", 44100), ("mp3", "mp3", "libmp3lame", 44100),
                                         ("opus", "ogg", "libopus", 48000)):
        path = workdir / f"decode.{kind}"
        _encode_noise(path, container, codec, rate, seconds)
        mb = path.stat().st_size / (1024 * 1024)
        inspect_file(path)  # warm the page cache
        with RssSampler() as sampler:
            started = time.perf_counter()
            info = inspect_file(path)
            elapsed = time.perf_counter() - started
        path.unlink()
        emit(f"catalog.inspect_decode_{kind}_mb_per_s", mb / elapsed, None, "higher", "MB/s",
             file_mb=round(mb, 1), audio_s=round(info.duration_s, 1), threads="off")
        emit(f"catalog.inspect_decode_{kind}_x_realtime", info.duration_s / elapsed, 100.0, "higher", "x",
             note="seconds of audio decoded per second")
        emit(f"catalog.inspect_decode_{kind}_rss_growth_mb", sampler.growth_mb, 50.0, "lower", "MB",
             file_mb=round(mb, 1))


# --- search over 100,000 tracks ---------------------------------------------------------------------------------
SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sil", "ba", "ne", "dor", "quil", "fa", "zen", "mor", "ti",
             "lu", "ash", "or", "ell", "ion", "gra", "pe", "ny", "stra", "vo", "cre", "dun", "hal", "wi", "es"]
GENRES = ["ambient", "rock", "jazz", "electronic", "folk", "hip-hop", "classical", "metal", "pop", "soul",
          "techno", "house", "blues", "country", "reggae", "punk", "funk", "drone", "indie", "experimental"]


def words(rng: random.Random, n: int) -> list[str]:
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))))
    return sorted(out)


def load_catalog(url: str) -> tuple[list[str], list[str]]:
    import psycopg

    rng = random.Random(42)
    vocab = words(rng, 6000)
    tags = words(random.Random(7), 300)
    artists = 2000
    releases = TRACKS // 5
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY artists (id, slug, name, bio, location, links, currency) FROM STDIN") as copy:
                names = []
                for i in range(1, artists + 1):
                    name = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 2))).title()
                    names.append(name)
                    copy.write_row((i, f"artist-{i}", name, "", "", "[]", "USD"))
            with cur.copy("COPY releases (id, artist_id, slug, title, kind, genre, tags, description, status, "
                          "published_at, currency, price_model) FROM STDIN") as copy:
                for i in range(1, releases + 1):
                    title = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 3))).title()
                    release_tags = "{" + ",".join(rng.sample(tags, 3)) + "}"
                    copy.write_row((i, rng.randint(1, artists), f"release-{i}", title, "album", rng.choice(GENRES),
                                    release_tags, "", "published", f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} "
                                    "12:00:00+00", "USD", "free_with_ads"))
            with cur.copy("COPY tracks (id, release_id, position, title, explicit, original_filename, status) "
                          "FROM STDIN") as copy:
                for i in range(1, TRACKS + 1):
                    release = (i - 1) // 5 + 1
                    title = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 4))).title()
                    copy.write_row((i, release, (i - 1) % 5 + 1, title, False, "", "published"))
            for table in ("artists", "releases", "tracks"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cur.execute("""
                UPDATE tracks t SET search_vector =
                    setweight(to_tsvector('simple', t.title), 'A') ||
                    setweight(to_tsvector('simple', a.name), 'A') ||
                    setweight(to_tsvector('simple', r.title), 'B') ||
                    setweight(to_tsvector('simple', r.genre || ' ' || array_to_string(r.tags, ' ')), 'C')
                FROM releases r JOIN artists a ON a.id = r.artist_id WHERE r.id = t.release_id""")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tracks")
        conn.execute("VACUUM ANALYZE releases")
        conn.execute("VACUUM ANALYZE artists")
    return vocab, names


def bench_search(url: str) -> None:
    from catalog.search import search_tracks

    started = time.perf_counter()
    vocab, artist_names = load_catalog(url)
    log(f"loaded {TRACKS} tracks in {time.perf_counter() - started:.1f}s")
    rng = random.Random(3)
    queries = []
    for i in range(QUERIES):
        kind = i % 4
        if kind == 0:
            queries.append(rng.choice(vocab))
        elif kind == 1:
            queries.append(f"{rng.choice(vocab)} {rng.choice(vocab)[:3]}")
        elif kind == 2:
            queries.append(rng.choice(artist_names))
        else:
            queries.append(f"{rng.choice(GENRES)} {rng.choice(vocab)[:4]}")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with sessions() as session:
        for q in queries[:50]:  # warm the caches and the connection
            search_tracks(session, q, now=now, limit=20)
        timings = []
        hits = 0
        for q in queries:
            t0 = time.perf_counter()
            page = search_tracks(session, q, now=now, limit=20)
            timings.append((time.perf_counter() - t0) * 1000)
            hits += len(page.items)
        # a second page through the keyset cursor costs the same as the first
        page = search_tracks(session, queries[0], now=now, limit=20)
        if page.next_cursor:
            t0 = time.perf_counter()
            search_tracks(session, queries[0], now=now, limit=20, cursor=page.next_cursor)
            log(f"second page: {(time.perf_counter() - t0) * 1000:.2f} ms")
    engine.dispose()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    emit("catalog.search_p95_ms", p95, 15.0, "lower", "ms", tracks=TRACKS, queries=len(timings),
         p50_ms=round(statistics.median(timings), 3), max_ms=round(timings[-1], 3),
         mean_hits=round(hits / len(timings), 1))


# --- download through the app server ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(url: str, buffer: bytearray) -> tuple[int, int, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    response = conn.getresponse()
    view = memoryview(buffer)
    total = 0
    while True:
        n = response.readinto(view)
        if not n:
            break
        total += n
    headers = dict(response.getheaders())
    conn.close()
    return response.status, total, headers


def _get_range(host: str, port: int, path: str, first: int | None = None, last: int | None = None) -> int:
    """GET (a byte range of) `path` over a plain socket into a reused buffer; returns the body's size."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    extra = f"Range: bytes={first}-{last}\r\n" if first is not None else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1024)
    head, _, body = head.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    buffer = memoryview(bytearray(8 * 1024 * 1024))
    got = len(body)
    while got < length:
        n = sock.recv_into(buffer, min(len(buffer), length - got))
        if not n:
            break
        got += n
    sock.close()
    return got


def _parallel_download(host: str, port: int, path: str, size: int, parts: int) -> None:
    step = -(-size // parts)
    spans = [(i * step, min(size, (i + 1) * step) - 1) for i in range(parts)]
    results: list[int] = []
    threads = [threading.Thread(target=lambda a=a, b=b: results.append(_get_range(host, port, path, a, b)))
               for a, b in spans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == size, results


def bare_app():
    """The transport's ceiling: a bare WSGI app handing BENCH_FILE to gunicorn's sendfile, no framework."""
    path = os.environ["BENCH_FILE"]

    def app(environ, start_response):
        file = open(path, "rb")  # noqa: SIM115 - closed by the server
        start_response("200 OK", [("Content-Length", str(os.path.getsize(path))),
                                  ("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](file, 1024 * 1024)

    return app


def _serve(target: str, env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", target], env=env)
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"gunicorn ({target}) did not start") from None
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()


def bench_download(url: str, workdir: Path) -> None:
    from app.config import Config
    from catalog import services
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.clock import SystemClock
    from core.users import create_user

    media = workdir / "media-download"
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    clock = SystemClock()
    with sessions() as session:
        user = create_user(session, email="bench@artists.ninety.test", password="bench-password-123",
                           roles=["artist"])
        session.flush()
        artist = services.create_artist(session, user=user, name="Bench Artist")
        release = services.create_release(session, artist.id, title="Big File")
        upload_track(session, MediaStore(media), release, WavStream(DOWNLOAD_MB * 1024 * 1024), "big.wav",
                     clock=clock, max_bytes=None, title="Long Take")
        services.publish_release(session, release, clock=clock)
        track_id = release.tracks[0].id
        token = services.issue_grant(session, track_id=track_id, listener_id="bench", via="ad", secret=SECRET,
                                     clock=clock, ttl_s=3600)
        session.commit()  # services never commit: the bench's set-up owns this unit of work
    engine.dispose()

    port = _free_port()
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=redis_url(), SECRET_KEY=SECRET, MEDIA_ROOT=str(media),
               NINETY_ENV="development", LOG_LEVEL="WARNING")
    Config.from_env(env)  # fail early on a bad environment
    server = _serve("app.wsgi:app", env, port)
    bare = None
    base = f"http://127.0.0.1:{port}"
    try:
        status, _, headers = _fetch(f"{base}/download/{token}", bytearray(65536))
        if status != 303:
            raise RuntimeError(f"grant redemption answered {status}")
        file_url = base + headers["Location"]
        status, size, _ = _fetch(file_url, bytearray(4 * 1024 * 1024))  # the first fetch writes the tagged copy
        if status != 200:
            raise RuntimeError(f"file answered {status}")
        path = urlsplit(file_url).path
        tagged = next((media / "tagged").rglob("*.wav"))
        bare_port = _free_port()
        bare = _serve("bench.catalog:bare_app()", dict(env, BENCH_FILE=str(tagged)), bare_port)
        small_times = []
        for _ in range(20):
            t0 = time.perf_counter()
            _get_range("127.0.0.1", port, path, 0, 0)
            small_times.append(time.perf_counter() - t0)
        log(f"per-request overhead (1-byte range): {statistics.median(small_times) * 1000:.2f} ms")

        # Rounds interleave every way of reading the file, so a busy machine slows them all alike.
        times: dict[str, list[float]] = {"app": [], "ranges": [], "curl": [], "bare": [], "cat": []}
        has_curl = shutil.which("curl") is not None
        for _ in range(ROUNDS):
            times["app"].append(_timed(lambda: _get_range("127.0.0.1", port, path)))
            times["ranges"].append(_timed(lambda: _parallel_download("127.0.0.1", port, path, size, 2)))
            if has_curl:
                times["curl"].append(_timed(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", file_url],
                                                                   check=True)))
            times["bare"].append(_timed(lambda: _get_range("127.0.0.1", bare_port, "/")))
            times["cat"].append(_timed(lambda: subprocess.run(f"cat '{tagged}' > /dev/null", shell=True,  # noqa: S602
                                                              check=True)))
    finally:
        _stop(server)
        if bare is not None:
            _stop(bare)
    mb = size / (1024 * 1024)
    rate = {name: mb / statistics.median(values) for name, values in times.items() if values}
    emit("catalog.cat_mb_per_s", rate["cat"], None, "higher", "MB/s", file_mb=round(mb, 1), rounds=ROUNDS)
    emit("catalog.download_mb_per_s", rate["app"], None, "higher", "MB/s", file_mb=round(mb, 1),
         server="gunicorn -w 2 (sendfile)", client="socket into a reused buffer", connections=1)
    emit("catalog.download_vs_cat_ratio", rate["app"] / rate["cat"], 0.5, "higher", "ratio", connections=1)
    if "curl" in rate:
        emit("catalog.download_curl_mb_per_s", rate["curl"], None, "higher", "MB/s", file_mb=round(mb, 1),
             client="curl -s -o /dev/null")
        emit("catalog.download_curl_vs_cat_ratio", rate["curl"] / rate["cat"], 0.5, "higher", "ratio",
             client="curl -s -o /dev/null, next to cat file > /dev/null")
    emit("catalog.download_2_ranges_mb_per_s", rate["ranges"], None, "higher", "MB/s", file_mb=round(mb, 1),
         connections=2)
    emit("catalog.download_2_ranges_vs_cat_ratio", rate["ranges"] / rate["cat"], 0.5, "higher", "ratio",
         connections=2)
    emit("catalog.bare_sendfile_mb_per_s", rate["bare"], None, "higher", "MB/s", file_mb=round(mb, 1),
         note="a bare WSGI app on the same gunicorn: the loopback transport's ceiling here")
    emit("catalog.download_vs_bare_sendfile_ratio", rate["app"] / rate["bare"], None, "higher", "ratio")


def _timed(action) -> float:
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ninety-bench-catalog-", dir=os.environ.get("BENCH_TMP") or None))
    try:
        bench_inspection(workdir)
        bench_decode_check(workdir)
        url = fresh_database(DB_NAME)
        bench_search(url)
        bench_download(url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
