"""Stream and preview copies: what a player is given instead of the original (which is never streamed).

- `stream.opus`: Opus 96 kbit/s VBR in Ogg — every current browser plays it; 48 kHz as Opus requires.
- `stream.mp3`: MP3 128 kbit/s CBR — the fallback for players without Opus (older Safari).
- previews: the same encodings of the first `PREVIEW_SECONDS` only, faded out over the last second. A
  preview is its own file, so whatever a server does with Range or seeking, it cannot hand out more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from media.transcode import Encoded, transcode

PREVIEW_SECONDS = 30.0
STREAM_CODECS = ("opus", "mp3")
_ENCODINGS = {"opus": "stream_opus", "mp3": "stream_mp3"}


def make_stream_copy(source: Path | str, target: Path | str, codec: str, *, preview: bool = False,
                     progress: Callable[[float], None] | None = None) -> Encoded:
    """Write the stream copy (or, with `preview`, the 30-second preview copy) of `source` in `codec`."""
    if codec not in _ENCODINGS:
        raise ValueError(f"codec must be one of {STREAM_CODECS}")
    return transcode(source, target, _ENCODINGS[codec], max_seconds=PREVIEW_SECONDS if preview else None,
                     progress=progress)
