"""Waveforms: min/max peaks per bucket of the decoded audio (numpy), and a PNG drawn from them.

`peaks(source, points)` decodes once and keeps the min and max of every block of `BLOCK` samples over
all channels, then folds the blocks into `points` buckets, so memory is a few hundred kB for any length.
`png(...)` draws the peaks as a filled band, one column per pixel, and writes the PNG by hand (zlib and
CRC32 from the standard library: no imaging library needed for one-colour bars).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np

from media.errors import Undecodable
from media.transcode import _detail, _open_input, layout_of

BLOCK = 256
DEFAULT_POINTS = 1000


def peaks(source: Path | str, points: int = DEFAULT_POINTS) -> dict:
    """{"points", "duration_ms", "min": [...], "max": [...]} with values in [-1, 1] rounded to 4 places."""
    if not 10 <= points <= 10_000:
        raise ValueError("points must be between 10 and 10000")
    container, stream = _open_input(Path(source))
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float32)
    samples = 0
    rate = 0
    with container:
        layout = layout_of(stream.codec_context)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.codec_context.sample_rate)
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frame.pts = None
                    for piece in resampler.resample(frame):
                        data = piece.to_ndarray()
                        rate = piece.sample_rate
                        samples += data.shape[1]
                        # the louder of the channels, signed: min over channels for lows, max for highs
                        lo, hi = data.min(axis=0), data.max(axis=0)
                        joined_lo = np.concatenate([carry[: len(carry) // 2], lo]) if len(carry) else lo
                        joined_hi = np.concatenate([carry[len(carry) // 2:], hi]) if len(carry) else hi
                        whole = len(joined_lo) // BLOCK * BLOCK
                        if whole:
                            lows.append(joined_lo[:whole].reshape(-1, BLOCK).min(axis=1))
                            highs.append(joined_hi[:whole].reshape(-1, BLOCK).max(axis=1))
                        carry = np.concatenate([joined_lo[whole:], joined_hi[whole:]])
        except (av.error.FFmpegError, ValueError) as exc:
            raise Undecodable(_detail(exc)) from None
    if len(carry):
        half = len(carry) // 2
        lows.append(np.array([carry[:half].min()], dtype=np.float32))
        highs.append(np.array([carry[half:].max()], dtype=np.float32))
    if not samples:
        raise Undecodable("the file decoded to no audio")
    low = np.concatenate(lows)
    high = np.concatenate(highs)
    edges = np.linspace(0, len(low), points + 1).astype(int)
    out_low, out_high = [], []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        end = max(end, start + 1) if start < len(low) else start
        if start >= len(low):
            out_low.append(0.0)
            out_high.append(0.0)
            continue
        out_low.append(float(low[start:end].min()))
        out_high.append(float(high[start:end].max()))
    clip = lambda v: round(min(1.0, max(-1.0, v)), 4)  # noqa: E731
    return {"points": points, "duration_ms": round(samples * 1000 / rate),
            "min": [clip(v) for v in out_low], "max": [clip(v) for v in out_high]}


def png(data: dict, *, width: int | None = None, height: int = 120, colour: tuple[int, int, int] = (60, 60, 60),
        background: tuple[int, int, int] | None = None) -> bytes:
    """The peaks as a PNG band `width` × `height` (width defaults to one pixel per point); RGBA with a
    transparent background unless `background` is given."""
    low = np.asarray(data["min"], dtype=np.float32)
    high = np.asarray(data["max"], dtype=np.float32)
    width = width or len(low)
    if width != len(low):
        index = np.linspace(0, len(low), width + 1).astype(int)
        low = np.array([low[a:max(b, a + 1)].min() for a, b in zip(index[:-1], index[1:], strict=True)])
        high = np.array([high[a:max(b, a + 1)].max() for a, b in zip(index[:-1], index[1:], strict=True)])
    middle = (height - 1) / 2
    top = np.floor(middle - high * middle).astype(int)
    bottom = np.ceil(middle - low * middle).astype(int)
    rows = np.arange(height)[:, None]
    mask = (rows >= top[None, :]) & (rows <= bottom[None, :])
    image = np.zeros((height, width, 4), dtype=np.uint8)
    if background is not None:
        image[..., :3] = background
        image[..., 3] = 255
    image[mask] = (*colour, 255)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, -1)], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))
