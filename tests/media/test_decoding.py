"""The decode check: exact sample counts by decoding (or demuxing PCM), and what FFmpeg cannot play."""

import pytest

from media.decoding import measure_audio
from media.errors import Undecodable
from tests.catalog.conftest import tone
from tests.media.encode import encoded_tone


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pcm_is_measured_by_demuxing_to_the_exact_sample(tmp_path):
    decoded = measure_audio(_write(tmp_path, "a.wav", tone("wav", 2.0)))
    assert (decoded.method, decoded.codec) == ("demux", "pcm_s16le")
    assert decoded.samples == 88200 and decoded.seconds == 2.0
    assert (decoded.sample_rate, decoded.channels, decoded.complete) == (44100, 2, True)


@pytest.mark.parametrize("kind,rate", [("flac", 44100), ("alac", 44100), ("opus", 48000)])
def test_lossless_and_opus_decode_to_the_samples_encoded(tmp_path, kind, rate):
    decoded = measure_audio(_write(tmp_path, f"a.{kind}", encoded_tone(kind, 2.5)))
    assert decoded.method == "decode"
    assert decoded.sample_rate == rate and decoded.channels == 2
    # FLAC and ALAC are exact; Opus drops its pre-skip and trims the end by the granule position
    assert decoded.samples == int(2.5 * rate)


def test_opus_is_counted_at_48_khz(tmp_path):
    decoded = measure_audio(_write(tmp_path, "a.opus", encoded_tone("opus", 1.0)))
    assert decoded.codec == "opus" and decoded.sample_rate == 48000 and decoded.seconds == 1.0


def test_a_cut_short_flac_breaks_off_with_how_far_it_got(tmp_path):
    data = encoded_tone("flac", 3.0)
    with pytest.raises(Undecodable) as caught:
        measure_audio(_write(tmp_path, "cut.flac", data[: len(data) // 2]))
    assert 0.5 < caught.value.decoded_s < 2.5
    assert caught.value.detail and caught.value.code == "undecodable"


@pytest.mark.parametrize("data", [b"\x00" * 4000, b"RIFF" + b"\x00" * 100, b"fLaC" + b"\xff" * 300])
def test_what_ffmpeg_cannot_open_is_undecodable(tmp_path, data):
    with pytest.raises(Undecodable):
        measure_audio(_write(tmp_path, "junk.bin", data))


def test_a_file_without_audio_is_undecodable(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes.fromhex("0000000d49484452000000010000000108060000001f15c489")
    with pytest.raises(Undecodable):
        measure_audio(_write(tmp_path, "still.png", png + bytes.fromhex("0000000049454e44ae426082")))


def test_decoding_can_stop_once_enough_is_known(tmp_path):
    decoded = measure_audio(_write(tmp_path, "a.flac", encoded_tone("flac", 4.0)), stop_after_s=1.0)
    assert not decoded.complete and 1.0 < decoded.seconds < 1.5


@pytest.mark.parametrize("keep_bytes", [44 + 4 * 30_001, 44 + 4 * 200_000 + 3])
def test_pcm_cut_short_is_measured_to_the_last_whole_sample(tmp_path, keep_bytes):
    # the WAV header still says 10 s; the seek near the stated end must find where the data really stops
    data = tone("wav", 10.0)
    assert data[36:40] == b"data"
    decoded = measure_audio(_write(tmp_path, "cut.wav", data[:keep_bytes]))
    assert decoded.method == "demux" and decoded.samples == (keep_bytes - 44) // 4


def test_pcm_with_chunks_after_its_data_counts_only_the_data(tmp_path):
    data = tone("wav", 3.0) + b"LIST" + (8).to_bytes(4, "little") + b"INFOabcd"
    decoded = measure_audio(_write(tmp_path, "tail.wav", data))
    assert decoded.samples == 3 * 44100


def test_pcm_stops_at_the_limit_like_decoding(tmp_path):
    decoded = measure_audio(_write(tmp_path, "a.aiff", tone("aiff", 3.0)), stop_after_s=1.0)
    assert not decoded.complete and decoded.seconds == 1.0
