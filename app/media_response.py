"""Serving a stored media file over HTTP with ranges and conditional requests (RFC 9110 §13, §14).

Not a blueprint: the stream view uses it (app/web/listening.py). A single range (and the whole file) goes
out as the server's `wsgi.file_wrapper` over the open file positioned at the range's start, with
Content-Length set, so gunicorn sends it with sendfile(2); several ranges are a multipart/byteranges body
read in blocks. Behind nginx (X_ACCEL_REDIRECT) the file is handed to nginx, which does the ranges itself.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from flask import Response, request

from app.errors import problem
from catalog.delivery import byte_ranges
from catalog.errors import RangeNotSatisfiable

BLOCK = 256 * 1024


class _Parts:
    """A multipart/byteranges body: each part's header, then its bytes, read in blocks."""

    def __init__(self, path: Path, spans, boundary: str, mimetype: str, size: int) -> None:
        self.path, self.spans, self.boundary, self.mimetype, self.size = path, spans, boundary, mimetype, size

    def heads(self):
        for start, stop in self.spans:
            yield (f"\r\n--{self.boundary}\r\nContent-Type: {self.mimetype}\r\n"
                   f"Content-Range: bytes {start}-{stop - 1}/{self.size}\r\n\r\n").encode()

    def length(self) -> int:
        return sum(len(h) for h in self.heads()) + sum(b - a for a, b in self.spans) + \
            len(f"\r\n--{self.boundary}--\r\n")

    def __iter__(self):
        with open(self.path, "rb") as file:
            for head, (start, stop) in zip(self.heads(), self.spans, strict=True):
                yield head
                file.seek(start)
                remaining = stop - start
                while remaining > 0:
                    data = file.read(min(BLOCK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
        yield f"\r\n--{self.boundary}--\r\n".encode()


class _FileRange:
    """`length` bytes of an open file, for servers without wsgi.file_wrapper."""

    def __init__(self, file, length: int) -> None:
        self.file, self.remaining = file, length

    def __iter__(self):
        while self.remaining > 0:
            data = self.file.read(min(BLOCK, self.remaining))
            if not data:
                break
            self.remaining -= len(data)
            yield data

    def close(self) -> None:
        self.file.close()


def _if_range_holds(etag: str, modified: datetime) -> bool:
    """If-Range (§13.1.5): the range applies only when the validator still matches (a strong ETag, or the
    exact Last-Modified date); otherwise the whole representation is sent."""
    header = request.headers.get("If-Range")
    if not header:
        return True
    value = header.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == f'"{etag}"'  # a weak validator never matches (§13.1.5 requires strong comparison)
    date = request.if_range.date
    return date is not None and int(date.timestamp()) == int(modified.timestamp())


def send_stream(path: Path, *, mimetype: str, etag: str, cache_seconds: int, x_accel: str = "",
                relative: str = "") -> Response:
    """The file at `path` with ETag/If-None-Match (304), If-Range, and single or multiple byte ranges
    (206; 416 with `Content-Range: bytes */size` when the ranges cannot be served)."""
    stat = path.stat()
    size = stat.st_size
    modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
    headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes", "Last-Modified": format_datetime(modified, usegmt=True),
               "Cache-Control": f"private, max-age={max(0, cache_seconds)}", "X-Content-Type-Options": "nosniff"}
    if request.if_none_match and request.if_none_match.contains(etag) or \
            (request.if_none_match and request.if_none_match.star_tag):
        return Response(status=304, headers=headers)
    if x_accel:
        response = Response(status=200, mimetype=mimetype, headers=headers)
        response.headers["X-Accel-Redirect"] = f"{x_accel.rstrip('/')}/{relative}"
        return response
    spans = None
    if _if_range_holds(etag, modified):
        try:
            spans = byte_ranges(request.headers.get("Range"), size)
        except RangeNotSatisfiable as exc:
            return problem(416, exc.code, exc.title, exc.message, reason=exc.details.get("reason"),
                           headers=[*headers.items(), ("Content-Range", f"bytes */{size}")])
    if spans is not None and len(spans) > 1:
        boundary = secrets.token_hex(12)
        body = _Parts(path, spans, boundary, mimetype, size)
        headers["Content-Length"] = str(body.length())
        response = Response(body if request.method != "HEAD" else b"", status=206, headers=headers,
                            content_type=f"multipart/byteranges; boundary={boundary}", direct_passthrough=True)
        return response
    start, length, status = 0, size, 200
    if spans is not None:
        start, stop = spans[0]
        length, status = stop - start, 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status=status, headers=headers, mimetype=mimetype)
    file = open(path, "rb")  # noqa: SIM115 - closed by the server through the body's close()
    file.seek(start)
    wrapper = request.environ.get("wsgi.file_wrapper")
    # gunicorn's sendfile stops at Content-Length; other servers' wrappers read to the end of the file.
    bounded = length == size - start or request.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")
    body = wrapper(file, BLOCK) if wrapper is not None and bounded else _FileRange(file, length)
    return Response(body, status=status, headers=headers, mimetype=mimetype, direct_passthrough=True)
