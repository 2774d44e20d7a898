"""Inspection of generated and crafted files: accepted formats with their facts, and every lie refused."""

import io
import struct

import pytest

from catalog.errors import AudioRejected
from catalog.inspection import inspect_file
from catalog.uploads import receive_and_inspect, title_from_filename
from tests.catalog.conftest import tone


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt,expected", [("wav", "wav"), ("flac", "flac"), ("ogg", "vorbis"), ("mp3", "mp3"),
                                          ("aiff", "aiff")])
def test_generated_tones_are_accepted_with_their_facts(tmp_path, fmt, expected):
    info = inspect_file(_write(tmp_path, f"x.{fmt}", tone(fmt, 2.0)))
    assert info.format == expected
    assert abs(info.duration_s - 2.0) < 0.1
    assert info.sample_rate == 44100 and info.channels == 2


def test_the_name_does_not_decide_the_format(tmp_path):
    assert inspect_file(_write(tmp_path, "song.mp3", tone("flac"))).format == "flac"
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "photo.flac", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100))
    assert caught.value.code == "not_audio" and "PNG image" in caught.value.message


def test_truncated_wav_header_lies_about_its_duration(tmp_path):
    data = tone("wav", 3.0)
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "cut.wav", data[: len(data) // 3]))
    assert caught.value.code == "duration_exceeds_size"


def test_truncated_flac_is_refused(tmp_path):
    data = tone("flac", 3.0)
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "cut.flac", data[: len(data) // 3]))
    assert caught.value.code in ("duration_exceeds_size", "corrupt_audio")


def test_flac_claiming_days_is_absurd(tmp_path):
    data = bytearray(tone("flac", 1.0))
    # STREAMINFO: sample rate (20 bits) | channels-1 (3) | bps-1 (5) | total samples (36) at offset 18
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (44100 * 3600 * 30)
    data[18:26] = packed.to_bytes(8, "big")
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "long.flac", bytes(data)))
    assert caught.value.code == "absurd_duration"


def test_zero_length_wav_is_refused(tmp_path):
    header = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100,
                                                                         44100 * 4, 4, 16)
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "zero.wav", header + b"data" + struct.pack("<I", 0)))
    assert caught.value.code in ("zero_duration", "corrupt_audio")


def test_tag_only_and_video_and_garbage(tmp_path):
    id3_only = b"ID3\x04\x00\x00\x00\x00\x00\x20" + b"\x00" * 32
    cases = {
        "tag.mp3": (id3_only, "tag_only"),
        "movie.mp4": (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8 + b"\x00\x00\x00\x08moov", None),
        "film.webm": (b"\x1a\x45\xdf\xa3" + b"\x00" * 100, "video_not_accepted"),
        "random.ogg": (b"OggS" + b"\x00" * 200, "corrupt_audio"),
        "midi.mid": (b"MThd\x00\x00\x00\x06" + b"\x00" * 50, "unsupported_audio_format"),
        "noise.mp3": (bytes(range(256)) * 8, "not_audio"),
        "empty.wav": (b"", "empty_file"),
    }
    for name, (data, code) in cases.items():
        with pytest.raises(AudioRejected) as caught:
            inspect_file(_write(tmp_path, name, data))
        if code:
            assert caught.value.code == code, name
        assert caught.value.message[0].isupper()


def test_rejected_uploads_leave_nothing_behind(store):
    with pytest.raises(AudioRejected):
        receive_and_inspect(store, io.BytesIO(b"\xff\xd8\xff" + b"\x00" * 5000), max_bytes=None)
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_titles_from_filenames():
    assert title_from_filename("../../03 - Night Drive.flac") == "Night Drive"
    assert title_from_filename("C:\\music\\07_Blue_Hour.mp3") == "Blue Hour"
    assert title_from_filename("1999.wav") == "1999"
