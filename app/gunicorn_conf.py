"""gunicorn settings for Ninety: `gunicorn -c python:app.gunicorn_conf app.wsgi:app` (what `ninety run` does).

Threaded workers, so a slow client holds one thread rather than a whole worker process; `app.wsgi` reads a
request body in full (at a minimum data rate, see app/request_body.py) before the application sees it.
Two workers with 64 threads each: 50 clients trickling uploads still leave threads free in either worker
(a worker queues connections it accepted while all its threads are busy, so one worker alone must not
fill up). The control socket lives in var/run/, not in the shared ~/.gunicorn/gunicorn.ctl that every
gunicorn on a host would otherwise unlink from under each other. Command-line flags override these.
"""

from __future__ import annotations

from pathlib import Path

from app.config import Config

worker_class = "gthread"
workers = 2
threads = 64
# gthread workers heartbeat from their main loop, so this bounds a stuck worker, not a long request.
timeout = 120
graceful_timeout = 20
keepalive = 5
# No access log of gunicorn's own: the app logs every request itself, as JSON with its request id, method,
# path, status and time (app/__init__.py), and a second plain line per request cost 2% of a page's CPU.
accesslog = None
# A keep-alive connection serves at most this many requests, then the answer says `Connection: close` and
# the client opens a new one (nginx's keepalive_requests, Apache's MaxKeepAliveRequests). A connection
# stays with the worker that accepted it, so connections that landed unevenly (16 on one worker and 4 on
# the other) would stay so, the busy worker's GIL capping them while the other idles; a new connection goes
# to whichever worker accepts it first, which is the one with time to spare. Measured in
# docs/decisions.md ("Web workers: frozen start-up heap, recycled keep-alive connections, ...").
KEEPALIVE_REQUESTS = 32


def post_worker_init(worker) -> None:
    """A worker has loaded the app: make what the hot requests need before the first one arrives, so they do
    not pay for it (all at once, every thread that arrives first): the bot filter's pattern (beacons) and the
    Stripe SDK, imported on first use (webhooks, checkout; half a second of CPU).

    Then everything loaded so far (modules, the app, its mappers and templates: some 200,000 objects) is
    moved out of the garbage collector's sight (`gc.freeze`). It lives as long as the worker, yet every
    full collection walked all of it: 120 to 200 ms with the GIL held, so each one stopped every request in
    the worker, two or three times in a 2,000-page run. Afterwards a full collection walks only what the
    requests left behind (3 to 5 ms)."""
    import gc

    import stripe  # noqa: F401 - imported now, not by the first webhook

    from adserver import ivt

    ivt.warm()
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()


def pre_request(worker, req) -> None:
    """Close a keep-alive connection after its KEEPALIVE_REQUESTS-th request (gunicorn's own hook only logs)."""
    worker.log.debug("%s %s", req.method, req.path)
    if req.req_number >= KEEPALIVE_REQUESTS:
        req.must_close = True


def control_socket_path(var_dir: str | Path) -> str:
    run_dir = Path(var_dir).resolve() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return str(run_dir / "gunicorn.ctl")


control_socket = control_socket_path(Config.from_env().var_dir)
