"""The embedded localstripe: a private store, loopback only, webhooks signed as Stripe signs them, stopped by
the last holder."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import psutil
import requests

from core.embedded import (
    configure_localstripe_webhook,
    ensure_localstripe,
    localstripe_pid,
    release_localstripe,
    spawn_localstripe,
    stop_process,
)

HOLD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.embedded import ensure_localstripe
    print(ensure_localstripe(Path(sys.argv[1])).url, flush=True)
""")


def _create_intent(base: str, **params) -> dict:
    data = {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true", **params}
    response = requests.post(f"{base}/v1/payment_intents", data=data, auth=("sk_test_ninety", ""), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_spawned_localstripe_serves_stripe_js_and_keeps_its_store_in_memory(tmp_path):
    process, port = spawn_localstripe()
    try:
        base = f"http://127.0.0.1:{port}"
        js = requests.get(f"{base}/js.stripe.com/v3/", timeout=10)
        assert js.status_code == 200 and "confirmCardPayment" in js.text
        intent = _create_intent(base)
        assert intent["status"] == "succeeded"
        assert requests.get(f"{base}/v1/payment_intents/{intent['id']}", auth=("sk_test_ninety", ""),
                            timeout=10).json()["id"] == intent["id"]
        # Loopback only: the listening socket is bound to 127.0.0.1, not every interface.
        bound = {c.laddr.ip for c in psutil.Process(process.pid).net_connections() if c.status == "LISTEN"}
        assert bound == {"127.0.0.1"}
    finally:
        stop_process(process)
    assert process.poll() is not None


def test_events_reach_the_configured_url_signed_with_the_secret(tmp_path):
    received: list[tuple[dict, str]] = []
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    process, port = spawn_localstripe()
    try:
        base = f"http://127.0.0.1:{port}"
        configure_localstripe_webhook(base, f"http://127.0.0.1:{hook.server_port}/webhooks/stripe", "whsec_test")
        intent = _create_intent(base)
        assert arrived.wait(15)
    finally:
        stop_process(process)
        hook.shutdown()
    events = [(json.loads(body), body, sig) for body, sig in received]
    succeeded = [e for e in events if e[0]["type"] == "payment_intent.succeeded"]
    assert succeeded and succeeded[0][0]["data"]["object"]["id"] == intent["id"]
    _, body, signature = succeeded[0]
    parts = dict(p.split("=", 1) for p in signature.split(","))
    expected = hmac.new(b"whsec_test", parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)


def test_the_embedded_server_keeps_its_objects_across_restarts_and_stops_with_its_last_holder(tmp_path):
    var = tmp_path / "var"
    out = subprocess.run([sys.executable, "-c", HOLD, str(var)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert localstripe_pid(var) is None  # the only holder exited: stopped

    first = ensure_localstripe(var)
    try:
        intent = _create_intent(first.url)
        assert first.webhook_secret.startswith("whsec_")
        assert ensure_localstripe(var) == first  # the same server, reused
    finally:
        pid = localstripe_pid(var)
        release_localstripe(var / "stripe")
    assert pid is not None and not psutil.pid_exists(pid)
    assert (var / "stripe" / "store.pickle").exists()

    second = ensure_localstripe(var)
    try:
        again = requests.get(f"{second.url}/v1/payment_intents/{intent['id']}", auth=("sk_test_ninety", ""),
                             timeout=10)
        assert again.status_code == 200 and again.json()["status"] == "succeeded"
    finally:
        release_localstripe(var / "stripe")
