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
accesslog = "-"


def post_worker_init(worker) -> None:
    """A worker has loaded the app: make what the hot requests need before the first one arrives, so they do
    not pay for it (all at once, every thread that arrives first): the bot filter's pattern (beacons) and the
    Stripe SDK, imported on first use (webhooks, checkout; half a second of CPU)."""
    import stripe  # noqa: F401 - imported now, not by the first webhook

    from adserver import ivt

    ivt.warm()


def control_socket_path(var_dir: str | Path) -> str:
    run_dir = Path(var_dir).resolve() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    return str(run_dir / "gunicorn.ctl")


control_socket = control_socket_path(Config.from_env().var_dir)
