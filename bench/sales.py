"""Sales figures against the running app: `python -m bench.sales`.

The app runs exactly as `ninety run` starts it (gunicorn with app/gunicorn_conf.py and the supervised
workers, receipts emailed to a real local SMTP server), pointed at a Stripe of its own: SALES_BENCH_STRIPE
"standin" (the default) is the project's Stripe-wire stand-in (tests/payments/connect_standin.py) in a process
of its own, "localstripe" the demo's embedded Stripe. Every fulfilment asks Stripe for the charge's fee, and
localstripe answers that by scanning its whole store, three times, for the charge's refunds (its
`Charge.refunds`): with 2,000 intents in it that is ~7 ms of CPU per question on this machine's two cores,
a cost of the test double, not of Stripe (whose answer is an index lookup) nor of Ninety. The stand-in
answers in O(1) and reports real, non-zero fees, so the burst measures Ninety.

1. A burst of signed purchase webhooks: SALES_BENCH_WEBHOOKS (2,000) orders are made through the checkout
   service with real PaymentIntents and confirmed with a card; their `payment_intent.succeeded` events
   (localstripe's own, captured, or the stand-in's intents as Stripe's events carry them, signed with the
   webhook secret) are POSTed to /webhooks/stripe all at once by 32 clients, with a tenth of them sent a
   second time in the same burst.
   Target: every order fulfilled within 10 s, nothing doubled — checked in the database afterwards (one paid
   order and one sale entry per event, one applied-event row per event id, the books balanced).
2. The checkout page under load: GET /checkout/releases/<id> as signed-in listeners, 16 at a time.
   Target: p95 at most 50 ms.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench.common import emit, fresh_database, log, redis_url

SECRET = "bench-secret-key-not-for-production-0123456789"
WEBHOOK_SECRET = "whsec_bench_sales"
PASSWORD = "bench-password-123"
ROOT = Path(__file__).resolve().parent.parent
WEBHOOKS = int(os.environ.get("SALES_BENCH_WEBHOOKS", "2000"))
STRIPE = os.environ.get("SALES_BENCH_STRIPE", "standin")
PAGE_REQUESTS = int(os.environ.get("SALES_BENCH_PAGES", "2000"))
BUYERS = int(os.environ.get("SALES_BENCH_BUYERS", "40"))
CLIENTS = 32
PAGE_CLIENTS = 16
DUPLICATES = 0.1
TARGET_S = 10.0


class _Capture:
    """Where localstripe sends its events during the set-up: each one kept as sent (body, signature)."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body)
                if event.get("type") == "payment_intent.succeeded":
                    with capture._lock:
                        capture.events[event["data"]["object"]["id"]] = (body, self.headers["Stripe-Signature"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, intents: list[str], timeout_s: float = 120) -> list[tuple[bytes, str]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(i in self.events for i in intents):
                    return [self.events[i] for i in intents]
            time.sleep(0.2)
        raise RuntimeError(f"localstripe sent {len(self.events)} of {len(intents)} payment_intent.succeeded events")


def _spawn_standin() -> tuple[subprocess.Popen, str]:
    """The Stripe-wire stand-in in a process of its own (its CPU is not the load generator's); its URL."""
    code = ("import sys\nfrom tests.payments.connect_standin import RunningStandIn\n"
            "standin = RunningStandIn()\nstandin.__enter__()\nprint(standin.url, flush=True)\nsys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise RuntimeError("the Stripe stand-in did not start")
    return process, url


def _standin_events(stripe_base: str, api_key: str, orders: list[dict]) -> list[tuple[bytes, str]]:
    """Each confirmed intent's `payment_intent.succeeded` event as Stripe sends it (the intent as it is, its
    latest charge an id, not expanded: so the app asks for the fee), signed with the webhook secret."""
    from tests.payments.connect_standin import ConnectStandIn

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {api_key}"
    deliveries = []
    for n, order in enumerate(orders):
        intent = http.get(f"{stripe_base}/v1/payment_intents/{order['intent']}")
        intent.raise_for_status()
        event = {"id": f"evt_bench_{n:08d}", "object": "event", "api_version": "2024-06-20",
                 "created": int(time.time()), "type": "payment_intent.succeeded", "livemode": False,
                 "pending_webhooks": 1, "data": {"object": intent.json()}}
        body = json.dumps(event).encode()
        deliveries.append((body, ConnectStandIn.sign(body, WEBHOOK_SECRET)))
    return deliveries


class _Mailbox:
    """A real SMTP server (aiosmtpd) on a loopback port that counts the receipts the app's worker sends."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received = 0
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        self.received += 1
        return "250 OK"

    def wait_for(self, count: int, timeout_s: float = 60) -> int:
        deadline = time.monotonic() + timeout_s
        while self.received < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.received


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shop(db_url: str, rd_url: str, stripe_base: str, var_dir: Path, count: int) -> tuple[list[dict], list[str], list[int]]:
    """Buyers, releases and `count` pending orders with confirmed PaymentIntents; the buyers' emails and the
    release ids."""
    from app.config import Config
    from app.seed.catalog import demo_tone
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.clock import SystemClock
    from core.db import import_all_models, make_engine, make_session_factory
    from core.users import create_user, get_user
    from payments.stripe_client import make_stripe_client
    from sales import services as sales

    import_all_models()
    config = Config(env="test", secret_key=SECRET, database_url=db_url, redis_url=rd_url, var_dir=var_dir,
                    stripe_api_base=stripe_base)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    clock = SystemClock()
    stripe = make_stripe_client(config.stripe_api_key, stripe_base)
    releases_needed = -(-count // BUYERS)
    audio = demo_tone("wav", 440.0, seconds=0.3)
    with sessions() as s:
        artist_user = create_user(s, email="artist@bench.test", password=PASSWORD, roles=["artist"])
        buyers = [create_user(s, email=f"buyer{n}@bench.test", password=PASSWORD, roles=["listener"])
                  for n in range(BUYERS)]
        s.flush()
        artist = catalog.create_artist(s, user=get_user(s, artist_user.id), name="Bench Band")
        collaborator = catalog.invite_payee(s, artist.id, email="collab@bench.test")
        payee = catalog.artist_payee(s, artist.id)
        release_ids = []
        for n in range(releases_needed):
            release = catalog.create_release(s, artist.id, title=f"Bench EP {n}", kind="ep")
            for position in (1, 2):
                track = upload_track(s, MediaStore(config.media_path), release, io.BytesIO(audio),
                                     f"{position:02d}.wav", clock=clock, max_bytes=None, title=f"Song {n}.{position}",
                                     position=position).track
                catalog.set_split_sheet(s, track, [(payee.id, 7000), (collaborator.id, 3000)], clock=clock)
            catalog.set_release_price(s, release, "fixed", price="5.00")
            catalog.publish_release(s, release, clock=clock)
            release_ids.append(release.id)
        s.commit()
        buyer_ids = [b.id for b in buyers]
        emails = [b.email for b in buyers]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {config.stripe_api_key}"

    def one(index: int) -> dict:
        buyer_id, release_id = buyer_ids[index % BUYERS], release_ids[index // BUYERS]
        with sessions() as s:
            checkout = sales.start_checkout(s, stripe, buyer=get_user(s, buyer_id), release_id=release_id,
                                            clock=clock)
            s.commit()
        # What the card element and Ninety's confirmation do: a card on the intent, then confirm.
        http.post(f"{stripe_base}/v1/payment_intents/{checkout.payment_intent_id}",
                  data={"payment_method": "pm_card_visa"}).raise_for_status()
        http.post(f"{stripe_base}/v1/payment_intents/{checkout.payment_intent_id}/confirm").raise_for_status()
        return {"order_id": checkout.order_id, "intent": checkout.payment_intent_id}

    with ThreadPoolExecutor(4) as pool:
        orders = list(pool.map(one, range(count)))
    engine.dispose()
    return orders, [emails[0], *emails[1:PAGE_CLIENTS]], release_ids


def _start_app(db_url: str, rd_url: str, stripe_base: str, var_dir: Path, port: int, smtp_port: int):
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=rd_url, SECRET_KEY=SECRET, NINETY_VAR_DIR=str(var_dir),
               LOG_LEVEL="WARNING", STRIPE_API_BASE=stripe_base, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
               SMTP_URL=f"smtp://127.0.0.1:{smtp_port}")
    env.pop("STRIPE_API_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ninety run exited with {process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the app did not become healthy")


def _stop(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_webhooks(url: str, db_url: str, deliveries: list[tuple[bytes, str]], orders: list[dict],
                   mailbox: _Mailbox) -> None:
    """The burst, from CLIENTS keep-alive connections of plain http.client (as the page benchmark's clients:
    on two cores requests' own CPU is taken from the server)."""
    import http.client
    from urllib.parse import urlsplit

    burst = deliveries + deliveries[: int(len(deliveries) * DUPLICATES)]
    random.Random(7).shuffle(burst)  # a duplicate may race its original
    host, port = urlsplit(url).hostname, urlsplit(url).port
    local = threading.local()
    opened: list = []

    def post(delivery: tuple[bytes, str]) -> int:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, port, timeout=60)
            opened.append(connection)
        body, signature = delivery
        connection.request("POST", "/webhooks/stripe", body=body,
                           headers={"Content-Type": "application/json", "Stripe-Signature": signature})
        response = connection.getresponse()
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            local.connection = None
        return response.status

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(post, burst))
    elapsed = time.perf_counter() - started
    for connection in opened:  # not left idle on the workers through the page phase
        connection.close()
    facts = _count(db_url, [o["order_id"] for o in orders])
    doubled = facts["entries"] - len(orders) + facts["event_rows"] - len(deliveries)
    fulfilled = facts["paid"] == len(orders) == facts["entries"] == facts["event_rows"] and facts["books_ok"]
    emit("sales.webhooks.burst_seconds", elapsed if fulfilled else float("inf"), TARGET_S, "lower", "s",
         events=len(deliveries), posts=len(burst), duplicates=len(burst) - len(deliveries),
         non_2xx=sum(1 for s in statuses if not 200 <= s < 300), paid=facts["paid"], sale_entries=facts["entries"],
         applied_events=facts["event_rows"], doubled=doubled, books_ok=facts["books_ok"], clients=CLIENTS,
         generator="python-http.client")
    emit("sales.webhooks.per_s", len(deliveries) / elapsed if fulfilled else 0.0, len(deliveries) / TARGET_S,
         "higher", "events/s", events=len(deliveries), stripe=STRIPE, fees_micros=facts["fees"])
    # Receipts go out after the answers, from the worker: each sale's buyer is emailed once.
    waited = time.perf_counter()
    receipts = mailbox.wait_for(len(orders))
    log(f"# receipts emailed: {receipts} of {len(orders)}, {time.perf_counter() - waited:.1f} s after the burst")


def _count(db_url: str, order_ids: list[int]) -> dict:
    from sqlalchemy import func, select

    from core.db import import_all_models, make_engine, make_session_factory
    from ledger.checks import check_books
    from ledger.models import Account, JournalEntry, JournalPosting
    from sales.models import Order, WebhookEvent

    import_all_models()
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s:
            paid = s.scalar(select(func.count()).select_from(Order).where(Order.id.in_(order_ids),
                                                                           Order.status == "paid"))
            entries = s.scalar(select(func.count()).select_from(JournalEntry)
                               .where(JournalEntry.idempotency_key.like("sale:%")))
            event_rows = s.scalar(select(func.count()).select_from(WebhookEvent)
                                  .where(WebhookEvent.type == "payment_intent.succeeded"))
            books_ok = check_books(s).ok
            fees = s.scalar(select(func.coalesce(func.sum(JournalPosting.amount_micros), 0))
                            .join(Account, Account.id == JournalPosting.account_id)
                            .where(Account.code == "expenses:processing-fees"))
    finally:
        engine.dispose()
    return {"paid": paid, "entries": entries, "event_rows": event_rows, "books_ok": books_ok, "fees": int(fees)}


def _signed_in(url: str, email: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{url}/signin", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    done = session.post(f"{url}/signin", data={"email": email, "password": PASSWORD, "csrf_token": token},
                        timeout=10, allow_redirects=False)
    if done.status_code != 302:
        raise RuntimeError(f"sign-in for {email} answered {done.status_code}")
    return session


def bench_checkout_page(url: str, emails: list[str], release_ids: list[int]) -> None:
    """Signed-in listeners (a session cookie each, from the real sign-in) loading checkout pages, PAGE_CLIENTS
    at a time, each on a keep-alive connection of its own. The clients are plain http.client, as the listening
    benchmark's: on two cores a heavier client (requests) takes CPU the server would otherwise have."""
    import http.client
    from urllib.parse import urlsplit

    sessions = [_signed_in(url, email) for email in emails[:PAGE_CLIENTS]]
    cookies = ["; ".join(f"{c.name}={c.value}" for c in session.cookies) for session in sessions]
    host, port = urlsplit(url).hostname, urlsplit(url).port
    per_client = max(1, PAGE_REQUESTS // len(sessions))

    def run(cookie: str) -> list[float]:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        times = []
        for n in range(-1, per_client):  # the first request warms the connection and the worker
            started = time.perf_counter()
            connection.request("GET", f"/checkout/releases/{release_ids[n % len(release_ids)]}",
                               headers={"Cookie": cookie})
            response = connection.getresponse()
            body = response.read()
            if n >= 0:
                times.append(time.perf_counter() - started)
            if response.status not in (200, 409) or b"Buy Bench EP" not in body:
                raise RuntimeError(f"checkout page answered {response.status}")
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.close()
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(len(cookies)) as pool:
        latencies = sorted(t for times in pool.map(run, cookies) for t in times)
    elapsed = time.perf_counter() - started
    p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000
    emit("sales.checkout_page.p95_ms", p95, 50.0, "lower", "ms", requests=len(latencies), clients=len(cookies),
         p50_ms=round(statistics.median(latencies) * 1000, 2), per_s=round(len(latencies) / elapsed, 1),
         setup="ninety run", generator="python-http.client")


def main() -> None:
    from core.embedded import configure_localstripe_webhook, spawn_localstripe, stop_process

    workdir = Path(tempfile.mkdtemp(prefix="ninety-bench-sales-", dir=os.environ.get("BENCH_TMP") or None))
    stripe_process = app = mailbox = None
    try:
        db_url = fresh_database("ninety_bench_sales")
        rd_url = redis_url(12)
        import redis as redis_lib

        redis_lib.Redis.from_url(rd_url).flushdb()
        log(f"# {WEBHOOKS} orders with confirmed PaymentIntents on {STRIPE} …")
        started = time.perf_counter()
        if STRIPE == "localstripe":
            stripe_process, stripe_port = spawn_localstripe()
            stripe_base = f"http://127.0.0.1:{stripe_port}"
            capture = _Capture()
            configure_localstripe_webhook(stripe_base, capture.url, WEBHOOK_SECRET)
            orders, emails, release_ids = _shop(db_url, rd_url, stripe_base, workdir / "var", WEBHOOKS)
            deliveries = capture.wait([o["intent"] for o in orders])
            capture.server.shutdown()
        else:
            from app.config import Config

            stripe_process, stripe_base = _spawn_standin()
            orders, emails, release_ids = _shop(db_url, rd_url, stripe_base, workdir / "var", WEBHOOKS)
            deliveries = _standin_events(stripe_base, Config.stripe_api_key, orders)
        log(f"# set-up took {time.perf_counter() - started:.1f} s; "
            f"{len(deliveries)} signed events ({hashlib.sha256(deliveries[0][0]).hexdigest()[:8]}…)")
        mailbox = _Mailbox()
        app, url = _start_app(db_url, rd_url, stripe_base, workdir / "var", _free_port(), mailbox.port)
        bench_webhooks(url, db_url, deliveries, orders, mailbox)
        bench_checkout_page(url, emails, release_ids)
    finally:
        if app is not None:
            _stop(app)
        if mailbox is not None:
            mailbox.controller.stop()
        if stripe_process is not None:
            stop_process(stripe_process)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
