"""Inspection of generated and crafted files: accepted formats with their facts, and every lie refused."""

import io
import struct

import pytest

from catalog.errors import AudioRejected
from catalog.inspection import inspect_file, lengths_agree
from catalog.uploads import receive_and_inspect, title_from_filename
from tests.catalog.conftest import tone
from tests.conftest import csrf_headers, login
from tests.media.encode import encoded_tone


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
    assert caught.value.code == "undecodable_audio"
    assert "breaks off after" in caught.value.message and caught.value.details["decoder"]


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


# --- decoded, not just parsed (issue 9) -----------------------------------------------------------------------
def test_opus_is_accepted_at_48_khz_with_its_duration(tmp_path):
    info = inspect_file(_write(tmp_path, "song.opus", encoded_tone("opus", 2.5)))
    assert (info.format, info.codec, info.mime) == ("opus", "opus", "audio/ogg")
    assert info.sample_rate == 48000 and info.channels == 2
    assert abs(info.duration_s - 2.5) < 0.01 and info.duration_ms == 2500
    assert 0 < info.bitrate < 400_000


@pytest.mark.parametrize("kind,fmt", [("m4a", "m4a"), ("alac", "alac"), ("mp3", "mp3"), ("flac", "flac")])
def test_encoded_files_are_accepted_with_their_decoded_length(tmp_path, kind, fmt):
    info = inspect_file(_write(tmp_path, f"x.{kind}", encoded_tone(kind, 2.5)))
    assert info.format == fmt and abs(info.duration_s - 2.5) < 0.03


@pytest.mark.parametrize("cut", [100, 400, 1000])
def test_m4a_cut_inside_its_header_is_refused_not_crashed(tmp_path, cut):
    # mutagen's AtomError (an atom running past the end of the file) is not a MutagenError
    data = encoded_tone("m4a", 3.0, options={"movflags": "faststart"})
    assert data[4:8] == b"ftyp" and b"moov" in data[:64]
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "cut.m4a", data[:cut]))
    assert caught.value.code == "corrupt_audio" and caught.value.status == 422
    assert "cut short" in caught.value.message


@pytest.mark.parametrize("fraction", [0.5, 0.98])
def test_m4a_cut_inside_its_audio_is_refused(tmp_path, fraction):
    data = encoded_tone("m4a", 3.0, options={"movflags": "faststart"})
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "cut.m4a", data[: int(len(data) * fraction)]))
    assert caught.value.code in ("undecodable_audio", "duration_mismatch")
    assert "no player can" in caught.value.message or "plays for" in caught.value.message


def test_truncated_m4a_upload_gets_a_422_problem_not_a_500(make_app, make_user, clock):
    app = make_app(clock=clock)
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    artist = client.post("/api/v1/artists", json={"name": "Cut"}, headers=csrf_headers()).get_json()
    release = client.post(f"/api/v1/artists/{artist['id']}/releases", json={"title": "Short"},
                          headers=csrf_headers()).get_json()
    data = encoded_tone("m4a", 3.0, options={"movflags": "faststart"})[:400]
    response = client.post(f"/api/v1/releases/{release['id']}/tracks",
                           data={"files": [(io.BytesIO(data), "cut.m4a")]}, content_type="multipart/form-data",
                           headers=csrf_headers())
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "corrupt_audio"


def _flac_claiming(data: bytes, total_samples: int) -> bytes:
    # STREAMINFO: sample rate (20 bits) | channels-1 (3) | bps-1 (5) | total samples (36) at offset 18
    data = bytearray(data)
    packed = int.from_bytes(data[18:26], "big")
    data[18:26] = ((packed & ~((1 << 36) - 1)) | total_samples).to_bytes(8, "big")
    return bytes(data)


def test_flac_whose_header_claims_more_than_it_holds_is_refused(tmp_path):
    # 3 s of audio, a header claiming 4.5 s: every frame decodes, the count does not add up
    data = _flac_claiming(encoded_tone("flac", 3.0), int(4.5 * 44100))
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "liar.flac", data))
    assert caught.value.code == "duration_mismatch"
    assert "4.50 seconds" in caught.value.message and "3.00 seconds" in caught.value.message


def test_flac_within_the_documented_slack_is_accepted_at_its_decoded_length(tmp_path):
    # a header 0.3 s long is within LENGTH_SLACK_S: accepted, and the decoded length is what is recorded
    info = inspect_file(_write(tmp_path, "ok.flac", _flac_claiming(encoded_tone("flac", 3.0), int(3.3 * 44100))))
    assert info.header_duration_s == pytest.approx(3.3, abs=0.001) and info.duration_s == 3.0
    assert lengths_agree(3.3, 3.0) and not lengths_agree(4.5, 3.0) and not lengths_agree(3.0, 4.5)
    assert lengths_agree(600.0, 597.5) and not lengths_agree(600.0, 596.0)  # 0.5 s + 0.5 %


def test_mp3_whose_xing_header_claims_less_than_it_holds_is_refused(tmp_path):
    data = bytearray(encoded_tone("mp3", 4.0))
    at = data.find(b"Info")
    if at < 0:
        at = data.find(b"Xing")
    assert at > 0 and data[at + 7] & 0x01  # the frame-count field is present
    frames = int.from_bytes(data[at + 8:at + 12], "big")
    data[at + 8:at + 12] = (frames // 2).to_bytes(4, "big")
    with pytest.raises(AudioRejected) as caught:
        inspect_file(_write(tmp_path, "half.mp3", bytes(data)))
    assert caught.value.code == "duration_mismatch"


def test_fragmented_m4a_may_decode_longer_than_its_first_header(tmp_path):
    # a fragmented MP4's moov covers only what precedes it; the fragments after it hold the rest
    for options in ({"movflags": "frag_keyframe", "frag_duration": "1000000"},
                    {"movflags": "frag_keyframe+empty_moov", "frag_duration": "1000000"}):
        info = inspect_file(_write(tmp_path, "frag.m4a", encoded_tone("m4a", 3.0, options=options)))
        assert info.header_is_lower_bound and info.format == "m4a"
        assert abs(info.duration_s - 3.0) < 0.1


def test_cut_ogg_opus_is_taken_at_the_length_it_really_plays(tmp_path):
    # Ogg states no total length: its "length" is the last page's granule, so a file cut between pages is a
    # shorter file that plays to its end. It is accepted at the length it decodes to, never at 3 s.
    data = encoded_tone("opus", 3.0)
    cut = data.rfind(b"OggS", 0, len(data) // 2)
    info = inspect_file(_write(tmp_path, "cut.opus", data[:cut]))
    assert info.format == "opus" and 0.5 < info.duration_s < 2.0
    assert info.duration_s == pytest.approx(info.header_duration_s, abs=0.03)
