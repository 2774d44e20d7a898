"""Every download and stream encoding, inspected with mutagen: codec, bitrate mode, bit depth, duration
within 50 ms of the master; previews never longer than 30 s; corrupt input refused with nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from mutagen import File as MutagenFile
from mutagen.flac import FLAC
from mutagen.mp3 import MP3, BitrateMode
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from media import waveform
from media.errors import Undecodable
from media.streams import PREVIEW_SECONDS, make_stream_copy
from media.transcode import ENCODINGS, transcode

RATE = 44100
SECONDS = 6.0


def music(seconds: float, rate: int = RATE) -> np.ndarray:
    """A chord with a beat and some noise: harder to encode than a sine (VBR has something to vary)."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    beat = np.exp(-((t * 2) % 1.0) * 12) * rng.standard_normal(len(t)) * 0.5
    left = 0.4 * chord + 0.2 * beat
    right = 0.35 * chord + 0.25 * np.roll(beat, 300)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def masters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masters")
    data = music(SECONDS)
    soundfile.write(folder / "m24.flac", data, RATE, subtype="PCM_24")
    soundfile.write(folder / "m16.wav", data, RATE, subtype="PCM_16")
    soundfile.write(folder / "long.flac", music(PREVIEW_SECONDS + 4, 22050), 22050, subtype="PCM_16")
    return folder


# format -> (mutagen class, codec check, bits expected for a 24-bit master or None)
EXPECT = {
    "mp3_v0": (MP3, None, None),
    "mp3_320": (MP3, None, None),
    "flac": (FLAC, None, 24),
    "alac": (MP4, "alac", 24),
    "aac": (MP4, "mp4a.40.2", None),
    "vorbis": (OggVorbis, None, None),
    "opus": (OggOpus, None, None),
    "wav": (WAVE, None, 24),
}


@pytest.mark.parametrize("fmt", list(EXPECT))
def test_every_download_format_from_a_24_bit_master(masters, tmp_path, fmt):
    made = transcode(masters / "m24.flac", tmp_path / f"out.{ENCODINGS[fmt].extension}", fmt)
    cls, codec, bits = EXPECT[fmt]
    parsed = MutagenFile(made.path)
    assert type(parsed) is cls
    assert abs(parsed.info.length - SECONDS) <= 0.050, parsed.info.length
    if codec:
        assert parsed.info.codec == codec
    if bits:
        assert parsed.info.bits_per_sample == bits and made.bits_per_sample == bits
    if fmt == "mp3_v0":
        assert parsed.info.bitrate_mode == BitrateMode.VBR
        assert parsed.info.bitrate > 128_000  # V0 of busy music sits around 200-260 kbit/s
    if fmt == "mp3_320":
        assert parsed.info.bitrate_mode == BitrateMode.CBR and abs(parsed.info.bitrate - 320_000) <= 1000
    if fmt == "flac":
        assert parsed.info.sample_rate == RATE
    if fmt in ("opus",):
        assert parsed.info.channels == 2


def test_vbr_frames_really_vary(masters, tmp_path):
    """V0 is VBR in the bitstream, not just in the header: frame sizes differ."""
    made = transcode(masters / "m24.flac", tmp_path / "v0.mp3", "mp3_v0")
    data = made.path.read_bytes()
    sizes = set()
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    i = data.find(b"\xff\xfb")
    while 0 <= i < len(data) - 4 and len(sizes) < 50:
        header = data[i:i + 4]
        index = header[2] >> 4
        if header[0] != 0xFF or (header[1] & 0xE0) != 0xE0 or index in (0, 15):
            i = data.find(b"\xff\xfb", i + 1)
            continue
        sizes.add(bitrates[index])
        padding = (header[2] >> 1) & 1
        i += 144 * bitrates[index] * 1000 // RATE + padding
    assert len(sizes) >= 3, sizes


def test_16_bit_stays_16_bit(masters, tmp_path):
    for fmt in ("flac", "alac", "wav"):
        made = transcode(masters / "m16.wav", tmp_path / f"o.{ENCODINGS[fmt].extension}", fmt)
        assert MutagenFile(made.path).info.bits_per_sample == 16


@pytest.mark.parametrize("codec,cls", [("opus", OggOpus), ("mp3", MP3)])
def test_stream_copies_and_previews(masters, tmp_path, codec, cls):
    full = make_stream_copy(masters / "long.flac", tmp_path / f"s.{codec}", codec)
    preview = make_stream_copy(masters / "long.flac", tmp_path / f"p.{codec}", codec, preview=True)
    assert abs(MutagenFile(full.path).info.length - (PREVIEW_SECONDS + 4)) <= 0.050
    parsed = MutagenFile(preview.path)
    assert type(parsed) is cls
    assert PREVIEW_SECONDS - 0.05 <= parsed.info.length <= PREVIEW_SECONDS + 0.05
    assert preview.seconds <= PREVIEW_SECONDS
    if codec == "mp3":
        assert abs(parsed.info.bitrate - 128_000) <= 1000 and parsed.info.bitrate_mode == BitrateMode.CBR
    else:
        assert full.sample_rate == 48000
        assert 60_000 <= MutagenFile(full.path).info.bitrate <= 130_000  # VBR around its 96 kbit/s target


def test_preview_fades_out(masters, tmp_path):
    preview = make_stream_copy(masters / "long.flac", tmp_path / "p.opus", "opus", preview=True)
    data = waveform.peaks(preview.path, points=100)
    assert max(data["max"][-1:]) < 0.1 < max(data["max"][:50])


def test_corrupt_input_is_refused_and_nothing_is_left(tmp_path, masters):
    broken = tmp_path / "broken.flac"
    whole = (masters / "m24.flac").read_bytes()
    broken.write_bytes(whole[:200] + bytes(range(256)) * 40)
    target = tmp_path / "out.mp3"
    with pytest.raises(Undecodable):
        transcode(broken, target, "mp3_320")
    assert not target.exists() and not list(tmp_path.glob(".out.mp3*"))
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all" * 100)
    with pytest.raises(Undecodable):
        transcode(garbage, tmp_path / "g.flac", "flac")
    assert not (tmp_path / "g.flac").exists()


def test_waveform_peaks_and_png(masters):
    data = waveform.peaks(masters / "m24.flac", points=1000)
    assert data["points"] == 1000 and len(data["min"]) == len(data["max"]) == 1000
    assert abs(data["duration_ms"] - SECONDS * 1000) <= 1
    assert all(-1 <= lo <= hi <= 1 for lo, hi in zip(data["min"], data["max"], strict=True))
    assert max(data["max"]) > 0.3 and min(data["min"]) < -0.3
    image = waveform.png(data, height=60)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1000, 60)


def test_shared_corpus_lossless_files_transcode(tmp_path):
    from tests.conftest import SHARED

    corpus = SHARED / "corpus" / "audio"
    sample = corpus / "alac.m4a"
    if not sample.exists():
        pytest.skip("../shared/corpus is not here (a fresh clone)")
    made = transcode(sample, tmp_path / "o.flac", "flac")
    assert abs(MutagenFile(made.path).info.length - MutagenFile(sample).info.length) <= 0.050


def test_mp3_without_the_ffmpeg_binary(masters, tmp_path, monkeypatch):
    """PyAV's own LAME gives the same encodings where Debian's ffmpeg is not installed."""
    monkeypatch.setenv("NINETY_FFMPEG", "0")
    v0 = MutagenFile(transcode(masters / "m24.flac", tmp_path / "v0.mp3", "mp3_v0").path)
    cbr = MutagenFile(transcode(masters / "m24.flac", tmp_path / "cbr.mp3", "mp3_320").path)
    assert v0.info.bitrate_mode == BitrateMode.VBR and cbr.info.bitrate_mode == BitrateMode.CBR
    assert abs(v0.info.length - SECONDS) <= 0.050 and abs(cbr.info.length - SECONDS) <= 0.050
