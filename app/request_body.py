"""Read request bodies in full, at a minimum data rate, before the application sees them.

A client that trickles an upload (1 byte/s) would otherwise hold a server thread, and the database
connection its view checked out, for as long as it likes. `BufferedBody` wraps the WSGI application: a
request with a body is spooled to memory (small) or a temporary file (large) first; the client must keep
up an average of `min_rate_bps` after a `grace_s` start, or a watchdog shuts the socket's read side and
the client gets 408 Request Timeout. Bodies above `max_bytes` get 413 without being read. The application
then reads a complete body from local storage, so no view waits on the network. (A buffering proxy in
front, nginx say, does the same job in production; this keeps the default setup safe without one.)

Views read the parts of a multipart body through `file_parts` and `json_field` (the audio upload, cover
art, a notice with its CSV and reference files), so "a chosen file" and "a JSON object in a form field"
mean the same thing, and are refused the same way, everywhere.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time

from flask import request
from werkzeug.datastructures import FileStorage
from werkzeug.wsgi import ClosingIterator

from app.api import reject_nul
from core.errors import ValidationError

CHUNK_BYTES = 8192
SPOOL_BYTES = 1024 * 1024


class _Watch:
    __slots__ = ("sock", "started", "deadline", "tripped")

    def __init__(self, sock, started: float):
        self.sock = sock
        self.started = started
        self.deadline = float("inf")
        self.tripped = False


class _Watchdog:
    """One thread per process that cuts off the reads which fell behind their deadline."""

    def __init__(self, interval_s: float = 0.25):
        self.interval_s = interval_s
        self._watches: set[_Watch] = set()
        self._lock = threading.Lock()
        self._pid = None

    def watch(self, watch: _Watch) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._pid = os.getpid()
                self._watches = set()
                threading.Thread(target=self._run, name="request-body-watchdog", daemon=True).start()
            self._watches.add(watch)

    def forget(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval_s)
            now = time.monotonic()
            with self._lock:
                late = [w for w in self._watches if now > w.deadline]
                for w in late:
                    self._watches.discard(w)
            for w in late:
                w.tripped = True
                try:
                    w.sock.shutdown(socket.SHUT_RD)  # the blocked recv() returns: the body ends here
                except OSError:
                    pass


_watchdog = _Watchdog()


def _problem(start_response, status: int, title: str, detail: str):
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    # No `Connection: close` (a WSGI app must not send hop-by-hop headers): gunicorn closes a connection
    # whose body it cannot drain.
    start_response(f"{status} {title}", [("Content-Type", "application/problem+json"),
                                         ("Content-Length", str(len(body)))])
    return [body]


class BufferedBody:
    def __init__(self, app, *, max_bytes: int, min_rate_bps: int = 1024, grace_s: float = 10.0):
        self.app = app
        self.max_bytes = max_bytes
        self.min_rate_bps = min_rate_bps
        self.grace_s = grace_s

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if not chunked and raw_length in ("", "0"):
            return self.app(environ, start_response)
        declared = None
        if not chunked:
            try:
                declared = int(raw_length)
            except ValueError:
                return _problem(start_response, 400, "Bad Request", "Content-Length is not a number.")
            if declared < 0:
                return _problem(start_response, 400, "Bad Request", "Content-Length is negative.")
            if declared > self.max_bytes:
                return _problem(start_response, 413, "Content Too Large",
                                f"The body is larger than the {self.max_bytes} bytes this server accepts.")
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            outcome = self._read(environ, body, declared)
        except BaseException:
            body.close()
            raise
        if outcome is not None:
            body.close()
            return _problem(start_response, *outcome)
        environ["CONTENT_LENGTH"] = str(body.tell())
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        body.seek(0)
        environ["wsgi.input"] = body
        environ["wsgi.input_terminated"] = True
        return ClosingIterator(self.app(environ, start_response), [body.close])

    def _read(self, environ, body, declared: int | None):
        """Spool the body into `body`; a (status, title, detail) problem when it cannot be had."""
        stream = environ["wsgi.input"]
        sock = environ.get("gunicorn.socket")
        watch = _Watch(sock, time.monotonic())
        if sock is not None:
            _watchdog.watch(watch)
        received = 0
        try:
            while declared is None or received < declared:
                want = CHUNK_BYTES if declared is None else min(CHUNK_BYTES, declared - received)
                # The deadline for this chunk: the grace period plus what the minimum rate allows so far.
                watch.deadline = watch.started + self.grace_s + (received + want) / self.min_rate_bps
                try:
                    data = stream.read(want)
                except Exception:  # noqa: BLE001 - any failure to read is the client's connection ending
                    data = b""
                if not data:
                    break
                received += len(data)
                if received > self.max_bytes:
                    return 413, "Content Too Large", f"The body is larger than the {self.max_bytes} bytes " \
                                                     "this server accepts."
                body.write(data)
        finally:
            if sock is not None:
                _watchdog.forget(watch)
        if watch.tripped:
            return 408, "Request Timeout", (f"The body arrived slower than {self.min_rate_bps} bytes a second; "
                                            "send it again over a faster connection.")
        if declared is not None and received < declared:
            return 400, "Bad Request", "The connection ended before the whole body arrived."
        return None


# --- the parts of a multipart body, for views -----------------------------------------------------------
def is_multipart() -> bool:
    return request.mimetype == "multipart/form-data"


def file_parts(*names: str, exclude: tuple[str, ...] = ()) -> list[tuple[str, FileStorage]]:
    """The multipart body's parts that carry a chosen file, as (field name, file) in the order sent: the
    fields `names` (every field when none is given) except `exclude`. An empty file input sends a part with
    no filename: not a file. Not multipart: []."""
    if not is_multipart():
        return []
    if names:
        parts = [(name, file) for name in names for file in request.files.getlist(name)]
    else:
        parts = list(request.files.items(multi=True))
    return [(name, file) for name, file in parts if name not in exclude and file and file.filename]


def json_field(name: str) -> dict:
    """The JSON object in the multipart field `name` (beside file parts), or a 4xx problem saying what is
    wrong with it; text with NUL characters is refused as in a JSON body."""
    raw = request.form.get(name)
    if raw is None:
        raise ValidationError(f"Send it as JSON in the multipart field {name!r}.", code=f"missing_{name}",
                              field=name)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"The field {name!r} is not valid JSON: {exc}", code="malformed_json",
                              status=400) from None
    if not isinstance(data, dict):
        raise ValidationError(f"The field {name!r} must be a JSON object.", code="malformed_json", status=400)
    reject_nul(data)
    return data
