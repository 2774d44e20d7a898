"""Transcoding speed: `python -m bench.transcode [SECONDS]` (bench/listening.py calls `run()`).

A 5-minute lossless master (the demo's synthesizer: drums, bass, pads, lead — not a tone, which encoders
find trivially easy), 44.1 kHz 24-bit FLAC, is transcoded to every download format and to the two stream
copies, one format at a time, in this process pinned to ONE core (decoders and encoders run with threading
off). Each figure is seconds of audio per second of wall time, including the decode of the master and the
write of the file: `listening.transcode.<format>.x_realtime`, target 40.

The figure divides by the CPU time the transcode used (this process and, for MP3, the ffmpeg child it
runs), not by wall time: the work is single-threaded, so CPU seconds are what it takes on one core of its
own, whatever else the machine is running at the time. Wall time is printed beside it (`wall_x`).

Encoder settings that decide the speed (media/transcode.py): LAME at algorithm quality 5 (its default
speed/quality trade), FFmpeg's AAC with the fast coder, libopus complexity 5, FLAC level 5, libvorbis q6.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import soundfile

from app.seed.music import RATE, compose
from bench.common import emit, log
from media.transcode import ENCODINGS, transcode

TARGET = 40.0
FORMATS = ("mp3_v0", "mp3_320", "flac", "alac", "aac", "vorbis", "opus", "wav", "stream_opus", "stream_mp3")


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _one_core() -> int | None:
    try:
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})
        return cores[-1]
    except (AttributeError, OSError):
        return None


def run(seconds: float = 300.0, formats: tuple[str, ...] = FORMATS) -> list[dict]:
    """Transcode a `seconds`-long master to each format; print and return one JSON line per format."""
    core = _one_core()
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as folder:
        master = Path(folder) / "master.flac"
        started = time.perf_counter()
        soundfile.write(master, compose(2026, seconds, "rock"), RATE, subtype="PCM_24")
        length = soundfile.info(master).duration
        log(f"# master: {length:.1f} s, 24-bit FLAC, {master.stat().st_size / 1e6:.1f} MB "
            f"(made in {time.perf_counter() - started:.1f} s); pinned to core {core}")
        for fmt in formats:
            target = Path(folder) / f"out.{ENCODINGS[fmt].extension}"
            began, cpu_began = time.perf_counter(), _cpu_seconds()
            made = transcode(master, target, fmt)
            elapsed, cpu = time.perf_counter() - began, _cpu_seconds() - cpu_began
            lines.append(emit(f"listening.transcode.{fmt}.x_realtime", length / cpu, TARGET, "higher", "x",
                              cpu_s=round(cpu, 2), wall_x=round(length / elapsed, 1),
                              output_mb=round(made.size_bytes / 1e6, 2)))
            target.unlink()
    return lines


def main() -> None:
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 300.0)


if __name__ == "__main__":
    main()
