"""Content-addressed file storage on the local filesystem (S3-compatible storage is the scale-out path).

A blob lives at `<root>/<kind>/<sha[:2]>/<sha>`. Uploads stream into a temporary file in the same
filesystem while SHA-256 is computed over the same chunks; the caller inspects the temporary file and
then either commits it (an atomic rename; a blob that already exists is kept and the copy dropped, which
is the de-duplication) or discards it. Nothing half-written is ever visible under a content address.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from catalog.errors import UploadTooLarge

CHUNK_BYTES = 4 * 1024 * 1024
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KINDS = ("audio", "images", "tagged", "renditions")


@dataclass
class PendingBlob:
    """A streamed upload waiting to be inspected, then committed or discarded."""

    store: MediaStore
    kind: str
    temp_path: Path
    sha256: str
    size_bytes: int

    def commit(self) -> Path:
        final = self.store.path_for(self.kind, self.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            self.discard()  # de-duplication: the same bytes are stored once
        else:
            os.chmod(self.temp_path, 0o444)
            os.replace(self.temp_path, final)
        return final

    def discard(self) -> None:
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass


def _fill(stream, readinto, buffer: bytearray) -> int:
    """Read up to a whole buffer (a network stream returns short reads); 0 at the end."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            data = stream.read(len(buffer) - filled)
            n = len(data) if data else 0
            view[filled:filled + n] = data or b""
        if not n:
            break
        filled += n
    return filled


def _write_all(out, chunk: memoryview) -> None:
    written = 0
    while written < len(chunk):
        written += out.write(chunk[written:])


class MediaStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, kind: str, sha256: str, suffix: str = "") -> Path:
        if kind not in _KINDS or not _SHA_RE.match(sha256) or not re.fullmatch(r"[-.a-z0-9]{0,40}", suffix):
            raise ValueError("not a content address")
        return self.root / kind / sha256[:2] / f"{sha256}{suffix}"

    def exists(self, kind: str, sha256: str) -> bool:
        return self.path_for(kind, sha256).exists()

    def temp_dir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def receive(self, stream: BinaryIO, *, kind: str = "audio", max_bytes: int | None = None) -> PendingBlob:
        """Stream `stream` to a temporary file, hashing as it goes; refuse more than `max_bytes`.

        Two buffers alternate: while one chunk is hashed here, the previous one is written by a helper
        thread (both release the GIL), so hashing and disk writes overlap; memory stays at two chunks.
        """
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.temp_dir())
        buffers = [bytearray(CHUNK_BYTES), bytearray(CHUNK_BYTES)]
        readinto = getattr(stream, "readinto", None)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-write")
        pending_write = None
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                index = 0
                while True:
                    buffer = buffers[index]
                    n = _fill(stream, readinto, buffer)
                    if not n:
                        break
                    size += n
                    if max_bytes is not None and size > max_bytes:
                        raise UploadTooLarge(
                            f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit. "
                            "Upload a smaller file (a lossless FLAC is usually well under it).")
                    chunk = memoryview(buffer)[:n]
                    if pending_write is not None:
                        pending_write.result()  # the other buffer is free again
                    pending_write = pool.submit(_write_all, out, chunk)
                    digest.update(chunk)
                    index ^= 1
                if pending_write is not None:
                    pending_write.result()
        except BaseException:
            if pending_write is not None:
                pending_write.exception()
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
            raise
        finally:
            pool.shutdown(wait=True)
        return PendingBlob(self, kind, Path(name), digest.hexdigest(), size)

    def put_bytes(self, data: bytes, *, kind: str = "images") -> str:
        import io

        pending = self.receive(io.BytesIO(data), kind=kind)
        pending.commit()
        return pending.sha256
