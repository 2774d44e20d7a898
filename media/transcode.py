"""Transcodes: one audio file to one encoding, decoded and encoded in-process by PyAV's bundled FFmpeg.

Pure audio work over paths: no catalog, no database. `transcode(source, target, encoding)` decodes the first
audio stream of `source` and writes `target` in the named encoding (see `ENCODINGS`), optionally only the
first `max_seconds` (a preview, faded out over its last second), and returns what it wrote, measured.

Choices, and why:
- Lossless outputs keep the master's sample rate and bit depth: 24-bit in is 24-bit out (FLAC, ALAC, WAV);
  16-bit stays 16. Samples pass through as integers, never through float.
- Lossy outputs are resampled only where the codec must (Opus is 48 kHz; MP3, AAC and Vorbis take at most
  48 kHz) and more than two channels are folded to stereo.
- MP3 V0 is LAME's VBR at quality 0 (FFmpeg's `-q:a 0`: the qscale flag with global_quality 0), so the
  file really is VBR (a Xing header, varying frame sizes); MP3 320 is CBR. LAME's algorithm quality is 5
  (`compression_level`), its speed setting: 2–3 are ~40 % slower for no audible gain at V0/320.
- MP3 goes through Debian's `ffmpeg` binary when it is installed: PyAV's wheel bundles a LAME built without
  its optimisations, 2.5× slower (measured on a 30-s master, one core: 0.80 s of CPU against 0.31 s), which
  alone kept MP3 under 40× real time. Without the binary, PyAV's LAME does the same encoding, slower.
- Vorbis: this PyAV build has no libvorbis (FFmpeg's native Vorbis encoder is experimental and poor), so
  Vorbis goes through libsndfile's libvorbis (`soundfile`, already a dependency), fed by the same decoder.
- A file that cannot be decoded raises `media.errors.Undecodable`; the target is written to a temporary
  name beside it and renamed only when complete, so a failed transcode never leaves a broken file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from media.errors import MediaError, Undecodable

FADE_S = 1.0


class TranscodeFailed(MediaError):
    code = "transcode_failed"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The audio could not be encoded: {detail}", detail=detail)
        self.detail = detail


@dataclass(frozen=True)
class Encoding:
    key: str
    container: str                   # FFmpeg muxer, or "sndfile" for libsndfile
    codec: str
    extension: str
    mime: str
    lossless: bool = False
    bit_rate: int | None = None      # CBR / target bit rate, bit/s
    vbr_quality: int | None = None   # LAME's -V
    rates: tuple[int, ...] = ()      # the output rates the codec takes; empty = keep the master's
    options: dict = field(default_factory=dict)


_LOSSY_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_MP3_RATES = (44100, 48000)  # MPEG-1 layer III: 320 kbit/s and full-band; lower rates go up to 44.1 kHz

ENCODINGS: dict[str, Encoding] = {e.key: e for e in (
    # stream copies
    Encoding("stream_opus", "ogg", "libopus", "opus", "audio/ogg", bit_rate=96_000, rates=(48000,),
             options={"vbr": "on", "compression_level": "5", "application": "audio"}),
    Encoding("stream_mp3", "mp3", "libmp3lame", "mp3", "audio/mpeg", bit_rate=128_000, rates=_MP3_RATES,
             options={"compression_level": "5"}),
    # download formats
    Encoding("mp3_v0", "mp3", "libmp3lame", "mp3", "audio/mpeg", vbr_quality=0, rates=_MP3_RATES,
             options={"compression_level": "5"}),
    Encoding("mp3_320", "mp3", "libmp3lame", "mp3", "audio/mpeg", bit_rate=320_000, rates=_MP3_RATES,
             options={"compression_level": "5"}),
    Encoding("flac", "flac", "flac", "flac", "audio/flac", lossless=True, options={"compression_level": "5"}),
    Encoding("alac", "ipod", "alac", "m4a", "audio/mp4", lossless=True),
    Encoding("aac", "ipod", "aac", "m4a", "audio/mp4", bit_rate=256_000, rates=_LOSSY_RATES[:2] + (32000,),
             options={"aac_coder": "fast"}),
    Encoding("vorbis", "sndfile", "vorbis", "ogg", "audio/ogg", rates=_LOSSY_RATES),
    Encoding("opus", "ogg", "libopus", "opus", "audio/ogg", bit_rate=160_000, rates=(48000,),
             options={"vbr": "on", "compression_level": "5", "application": "audio"}),
    Encoding("wav", "wav", "pcm", "wav", "audio/wav", lossless=True),
)}

VORBIS_QUALITY = 0.6  # libvorbis -q 6 (~190 kbit/s stereo)


@dataclass(frozen=True)
class Encoded:
    path: Path
    encoding: str
    codec: str
    sample_rate: int
    channels: int
    bits_per_sample: int | None
    samples: int            # per channel, written
    seconds: float
    size_bytes: int


@dataclass(frozen=True)
class _Source:
    rate: int
    channels: int
    depth: int              # 16, 24 or 32 for integer PCM-like masters; 0 when the decoder gives float
    duration_s: float


def _detail(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:160]


def _depth(context) -> int:
    name = context.format.name if context.format else ""
    if name.startswith("s16") or name.startswith("u8"):
        return 16
    if name.startswith("s32"):
        raw = int(getattr(context, "bits_per_raw_sample", 0) or 0)
        if not raw:
            raw = 24 if context.name in ("flac", "alac") or context.name.startswith("pcm_s24") else 32
        return 24 if raw <= 24 else 32
    return 0


_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def layout_of(context) -> str:
    """The decoder's channel layout by name; an unnamed one ("2 channels", from WAV) as the default for
    its channel count, which encoders such as ALAC require."""
    name = context.layout.name if context.layout else ""
    if not name or name.endswith("channels"):
        name = _DEFAULT_LAYOUTS.get(int(context.channels or 0), name or "stereo")
    return name


def _output_rate(encoding: Encoding, rate: int) -> int:
    if not encoding.rates:
        return rate
    if rate in encoding.rates:
        return rate
    higher = [r for r in encoding.rates if r >= rate]
    return min(higher) if higher else max(encoding.rates)


def _lossless_codec(encoding: Encoding, depth: int) -> tuple[str, str, int]:
    """(codec, sample format, bits) for a lossless output of a master `depth` bits deep."""
    deep = depth in (24, 32)
    bits = 24 if deep else 16
    if encoding.key == "flac":
        return "flac", "s32" if deep else "s16", bits
    if encoding.key == "alac":
        return "alac", "s32p" if deep else "s16p", bits
    return ("pcm_s24le", "s32", 24) if deep else ("pcm_s16le", "s16", 16)


def _frames(container, stream, progress: Callable[[float], None] | None, duration_s: float):
    """Decoded frames of `stream`, reporting progress at most ~100 times."""
    reported = -1
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if progress is not None and duration_s > 0 and frame.time is not None:
                    step = int(min(1.0, frame.time / duration_s) * 100)
                    if step > reported:
                        reported = step
                        progress(step / 100)
                yield frame
    except (av.error.FFmpegError, ValueError) as exc:
        raise Undecodable(_detail(exc)) from None


class _Limiter:
    """Cuts the frame stream at `max_samples` and fades the last `FADE_S` out (float planar frames)."""

    def __init__(self, max_samples: int | None, rate: int) -> None:
        self.max_samples = max_samples
        self.fade = int(FADE_S * rate) if max_samples else 0
        self.seen = 0

    @property
    def done(self) -> bool:
        return self.max_samples is not None and self.seen >= self.max_samples

    def apply(self, frame):
        if self.max_samples is None:
            self.seen += frame.samples
            return frame
        left = self.max_samples - self.seen
        if left <= 0:
            return None
        data = frame.to_ndarray().astype(np.float32, copy=True)  # fltp: (channels, samples)
        data = data[:, :left]
        start = self.seen
        count = data.shape[1]
        fade_from = self.max_samples - self.fade
        if start + count > fade_from:
            index = np.arange(start, start + count)
            gain = np.clip((self.max_samples - index) / max(1, self.fade), 0.0, 1.0).astype(np.float32)
            data *= gain
        self.seen += count
        out = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=frame.layout.name)
        out.sample_rate = frame.sample_rate
        return out


def probe(source: Path | str) -> _Source:
    try:
        with av.open(str(source)) as container:
            if not container.streams.audio:
                raise Undecodable("the file holds no audio stream")
            stream = container.streams.audio[0]
            context = stream.codec_context
            duration = 0.0
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            return _Source(int(context.sample_rate or 0), int(context.channels or 0), _depth(context), duration)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise Undecodable(_detail(exc)) from None


def transcode(source: Path | str, target: Path | str, encoding: str, *, max_seconds: float | None = None,
              progress: Callable[[float], None] | None = None) -> Encoded:
    """Write `source` as `encoding` (a key of ENCODINGS) to `target`; only the first `max_seconds` if given.

    Raises Undecodable (the source is not audio FFmpeg can decode to its end) or TranscodeFailed; in both
    cases nothing is left at `target`."""
    spec = ENCODINGS[encoding]
    target = Path(target)
    temp = target.with_name(f".{target.name}.part")
    try:
        if spec.container == "sndfile":
            result = _transcode_sndfile(Path(source), temp, spec, max_seconds, progress)
        elif spec.codec == "libmp3lame" and ffmpeg_binary():
            result = _transcode_ffmpeg(Path(source), temp, spec, max_seconds, progress)
        else:
            result = _transcode_av(Path(source), temp, spec, max_seconds, progress)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return Encoded(target, encoding, result[0], result[1], result[2], result[3], result[4],
                   result[4] / result[1] if result[1] else 0.0, target.stat().st_size)


def _open_input(source: Path):
    try:
        container = av.open(str(source), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise Undecodable(_detail(exc)) from None
    if not container.streams.audio:
        container.close()
        raise Undecodable("the file holds no audio stream")
    stream = container.streams.audio[0]
    stream.codec_context.thread_type = "NONE"
    return container, stream


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / 1_000_000


def _transcode_av(source: Path, temp: Path, spec: Encoding, max_seconds: float | None,
                  progress) -> tuple[str, int, int, int | None, int]:
    container, in_stream = _open_input(source)
    with container:
        context = in_stream.codec_context
        in_rate = int(context.sample_rate or 0)
        in_channels = int(context.channels or 0)
        if not in_rate or not in_channels:
            raise Undecodable("the decoder found no sample rate or channels")
        depth = _depth(context)
        duration = _duration(container, in_stream)
        if max_seconds is not None:
            duration = min(duration, max_seconds) if duration else max_seconds
        bits: int | None = None
        if spec.lossless:
            codec, sample_format, bits = _lossless_codec(spec, depth or 24)
            rate, layout = in_rate, layout_of(context)
        else:
            codec, sample_format = spec.codec, None
            rate = _output_rate(spec, in_rate)
            layout = "mono" if in_channels == 1 else "stereo"
        options = dict(spec.options)
        if bits == 24:
            options["bits_per_raw_sample"] = "24"
        try:
            out = av.open(str(temp), mode="w", format=spec.container)
        except (av.error.FFmpegError, OSError) as exc:
            raise TranscodeFailed(_detail(exc)) from None
        try:
            with out:
                stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
                occ = stream.codec_context
                if sample_format:
                    occ.format = sample_format
                if spec.bit_rate:
                    occ.bit_rate = spec.bit_rate
                if spec.vbr_quality is not None:
                    occ.qscale = True
                    occ.global_quality = spec.vbr_quality * 118  # FF_QP2LAMBDA
                occ.thread_type = "NONE"
                limiter = _Limiter(round(max_seconds * in_rate) if max_seconds is not None else None, in_rate)
                to_float = (av.AudioResampler(format="fltp", layout=layout_of(context), rate=in_rate)
                            if max_seconds is not None else None)
                # frames of exactly the encoder's frame size, in its sample format, rate and layout
                # (an identity for integer lossless output: samples are never converted through float)
                fit = av.AudioResampler(format=occ.format.name, layout=occ.layout.name, rate=occ.sample_rate,
                                        frame_size=occ.frame_size or None)

                def encode(piece) -> None:
                    for ready in fit.resample(piece):
                        ready.pts = None
                        for packet in stream.encode(ready):
                            out.mux(packet)

                for frame in _frames(container, in_stream, progress, duration):
                    frame.pts = None
                    frames = to_float.resample(frame) if to_float is not None else [frame]
                    for piece in frames:
                        piece = limiter.apply(piece)
                        if piece is None:
                            break
                        piece.pts = None
                        encode(piece)
                    if limiter.done:
                        break
                encode(None)
                for packet in stream.encode(None):
                    out.mux(packet)
                written = round(limiter.seen * rate / in_rate)
        except Undecodable:
            raise
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise TranscodeFailed(_detail(exc)) from None
    if written == 0:
        raise Undecodable("the file decoded to no audio")
    if progress is not None:
        progress(1.0)
    return codec, rate, (in_channels if spec.lossless else (1 if layout == "mono" else 2)), bits, written


def ffmpeg_binary() -> str | None:
    if os.environ.get("NINETY_FFMPEG", "1") == "0":  # force PyAV everywhere (tests compare the two)
        return None
    return shutil.which("ffmpeg")


def _transcode_ffmpeg(source: Path, temp: Path, spec: Encoding, max_seconds: float | None,
                      progress) -> tuple[str, int, int, int | None, int]:
    """The same encoding by the `ffmpeg` binary, one thread, reading its progress from `-progress`."""
    container, in_stream = _open_input(source)  # the same refusal as the other paths for a non-audio file
    with container:
        context = in_stream.codec_context
        in_rate, in_channels = int(context.sample_rate or 0), int(context.channels or 0)
        duration = _duration(container, in_stream)
    if not in_rate or not in_channels:
        raise Undecodable("the decoder found no sample rate or channels")
    rate = _output_rate(spec, in_rate)
    channels = 1 if in_channels == 1 else 2
    if max_seconds is not None:
        duration = min(duration, max_seconds) if duration else max_seconds
    command = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", "1",
               "-i", str(source), "-map", "0:a:0", "-map_metadata", "-1", "-vn", "-c:a", "libmp3lame",
               "-ar", str(rate), "-ac", str(channels)]
    if spec.vbr_quality is not None:
        command += ["-q:a", str(spec.vbr_quality)]
    else:
        command += ["-b:a", str(spec.bit_rate)]
    command += ["-compression_level", spec.options.get("compression_level", "5")]
    if max_seconds is not None:
        fade_at = max(0.0, max_seconds - FADE_S)
        command += ["-t", f"{max_seconds:.3f}", "-af", f"afade=t=out:st={fade_at:.3f}:d={FADE_S:.3f}"]
    command += ["-f", "mp3", "-progress", "pipe:1", "-nostats", str(temp)]
    out_us = 0
    reported = -1
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                out_us = int(value)
                if progress is not None and duration > 0:
                    step = int(min(1.0, out_us / 1e6 / duration) * 100)
                    if step > reported:
                        reported = step
                        progress(step / 100)
        errors = process.stderr.read()
    if process.returncode != 0:
        lines = errors.strip().splitlines() or ["ffmpeg failed"]
        decoding = [line for line in lines if "decoding" in line or "Invalid data" in line]
        if decoding:
            raise Undecodable(decoding[0][:160])
        raise TranscodeFailed(lines[-1][:160])
    # the muxer's end time runs up to one frame past the input (the last frame's padding); `-t` cut the input
    seconds = out_us / 1e6 if max_seconds is None else min(out_us / 1e6, max_seconds)
    written = round(seconds * rate)
    if written == 0:
        raise Undecodable("the file decoded to no audio")
    if progress is not None:
        progress(1.0)
    return "libmp3lame", rate, channels, None, written


def _transcode_sndfile(source: Path, temp: Path, spec: Encoding, max_seconds: float | None,
                       progress) -> tuple[str, int, int, int | None, int]:
    container, in_stream = _open_input(source)
    with container:
        context = in_stream.codec_context
        in_rate = int(context.sample_rate or 0)
        in_channels = int(context.channels or 0)
        if not in_rate or not in_channels:
            raise Undecodable("the decoder found no sample rate or channels")
        rate = _output_rate(spec, in_rate)
        layout = "mono" if in_channels == 1 else "stereo"
        channels = 1 if layout == "mono" else 2
        duration = _duration(container, in_stream)
        if max_seconds is not None:
            duration = min(duration, max_seconds) if duration else max_seconds
        resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
        limit = round(max_seconds * rate) if max_seconds is not None else None
        limiter = _Limiter(limit, rate)
        planar = av.AudioResampler(format="fltp", layout=layout, rate=rate) if limit is not None else None
        try:
            with soundfile.SoundFile(str(temp), "w", samplerate=rate, channels=channels, format="OGG",
                                     subtype="VORBIS", compression_level=1.0 - VORBIS_QUALITY) as out:
                for frame in _frames(container, in_stream, progress, duration):
                    frame.pts = None
                    if planar is not None:
                        for piece in planar.resample(frame):
                            piece = limiter.apply(piece)
                            if piece is None:
                                break
                            out.write(np.ascontiguousarray(piece.to_ndarray().T))
                        if limiter.done:
                            break
                        continue
                    for piece in resampler.resample(frame):
                        data = piece.to_ndarray().reshape(-1, channels)
                        limiter.seen += data.shape[0]
                        out.write(data)
                if planar is None:
                    for piece in resampler.resample(None):
                        data = piece.to_ndarray().reshape(-1, channels)
                        limiter.seen += data.shape[0]
                        out.write(data)
        except Undecodable:
            raise
        except (soundfile.LibsndfileError, RuntimeError, OSError, av.error.FFmpegError) as exc:
            raise TranscodeFailed(_detail(exc)) from None
    if limiter.seen == 0:
        raise Undecodable("the file decoded to no audio")
    if progress is not None:
        progress(1.0)
    return "vorbis", rate, channels, None, limiter.seen


def seconds_of(samples: int, rate: int) -> float:
    return float(Fraction(samples, rate)) if rate else 0.0
