"""Tones encoded with PyAV's bundled FFmpeg, for the formats libsndfile cannot write (Opus, AAC/M4A, ALAC)."""

from __future__ import annotations

import os
import tempfile

import av
import numpy as np

# name -> (container, codec, rate)
ENCODINGS = {
    "opus": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 44100),
    "alac": ("ipod", "alac", 44100),
    "mp3": ("mp3", "libmp3lame", 44100),
    "flac": ("flac", "flac", 44100),
}


def encoded_tone(kind: str, seconds: float = 2.0, *, options: dict | None = None) -> bytes:
    """`seconds` of a stereo 440 Hz tone as `kind` (see ENCODINGS); `options` go to the muxer."""
    container, codec, rate = ENCODINGS[kind]
    # a real file, not a buffer: faststart rewrites the file in a second pass
    handle, path = tempfile.mkstemp(suffix=f".{kind}")
    os.close(handle)
    try:
        _encode(path, container, codec, rate, seconds, options or {})
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def _encode(path: str, container: str, codec: str, rate: int, seconds: float, options: dict) -> None:
    with av.open(path, "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        context = stream.codec_context
        frame_size = context.frame_size or 1024
        sample_format = context.format.name
        total = int(seconds * rate)
        for start in range(0, total, frame_size):
            count = min(frame_size, total - start)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(start, start + count) / rate)).astype(np.float32)
            planes = np.stack([wave, wave])
            if sample_format.startswith("s16"):
                planes = (planes * 32767).astype(np.int16)
            elif sample_format.startswith("s32"):
                planes = (planes * 2 ** 31 * 0.9).astype(np.int32)
            if not sample_format.endswith("p"):  # packed: one plane, channels interleaved
                planes = planes.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(planes, format=sample_format, layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
