"""Every file of ../shared/corpus/audio through the upload service: accepted with plausible facts, or
refused with a reason code; nothing else ever escapes."""

import av
import pytest

from catalog import services
from catalog.errors import AudioRejected
from catalog.inspection import MESSAGES
from catalog.uploads import upload_track


def test_corpus_is_classified_without_exceptions(shared_dir, db_session, artist, store, clock):
    files = sorted(p for p in (shared_dir / "corpus" / "audio").iterdir() if p.name != "README.md")
    assert len(files) == 100
    release = services.create_release(db_session, artist.id, title="Corpus")
    accepted, rejected = {}, {}
    for path in files:
        try:
            with path.open("rb") as fh:
                result = upload_track(db_session, store, release, fh, path.name, clock=clock, max_bytes=None)
        except AudioRejected as exc:
            assert exc.code in MESSAGES and exc.message and exc.status == 422, path.name
            rejected[path.name] = exc.code
            continue
        accepted[path.name] = result.asset
    assert len(accepted) + len(rejected) == 100
    assert len(accepted) >= 30 and len(rejected) >= 30

    for name, asset in accepted.items():
        seconds = asset.duration_ms / 1000
        assert 0 < seconds < 10 * 3600, name
        assert asset.sample_rate >= 8000 and 1 <= asset.channels <= 8, name
        assert asset.size_bytes == (shared_dir / "corpus" / "audio" / name).stat().st_size
        # the duration must fit in the file: bitrate x duration cannot exceed the bytes (plus tag slack)
        assert seconds * asset.bitrate / 8 <= asset.size_bytes * 1.05 + 4096, name
        if asset.codec == "pcm":
            pcm_bytes = seconds * asset.sample_rate * asset.channels * (asset.bits_per_sample or 8) / 8
            assert pcm_bytes <= asset.size_bytes, name

    # a few we know: what each is, and why the others are refused
    assert accepted["silence-44-s.flac"].format == "flac"
    assert accepted["alac.m4a"].format == "alac" and accepted["no-tags.m4a"].format == "m4a"
    assert accepted["multipage-setup.ogg"].format == "vorbis"
    assert accepted["silence-2s-PCM-44100-16-ID3v23.wav"].format == "wav"
    assert accepted["with-id3.aif"].format == "aiff"
    assert rejected["image.jpg"] == "not_audio"
    assert rejected["emptyfile.mp3"] == "empty_file"
    assert rejected["issue_29.wma"] == "unsupported_audio_format"
    assert rejected["sample.oggtheora"] == "video_not_accepted"
    assert rejected["truncated-64bit.mp4"] == "video_not_accepted"
    assert rejected["nero-chapters.m4b"] == "absurd_duration"
    assert rejected["issue_21.id3"] == "tag_only"
    # issue 9: parsed by mutagen, but no decoder can play them
    assert rejected["52-too-short-block-size.flac"] == "undecodable_audio"  # claims 202.8 s
    assert rejected["106-short-picture-block-size.flac"] == "undecodable_audio"
    assert rejected["adif.aac"] == "undecodable_audio"
    # issue 9: Opus has no sample rate in mutagen's info; it decodes at 48 kHz
    opus = accepted["example.opus"]
    assert (opus.format, opus.sample_rate, opus.channels) == ("opus", 48000, 1)
    assert abs(opus.duration_ms - 11355) <= 1
    # a fragmented MP4 whose moov covers 15.0 s, with 1.3 s more in a fragment after it
    assert abs(accepted["no-tags.3g2"].duration_ms - 16300) <= 50

    # no undecodable file accepted: the decoder itself, independently of catalog.inspection, plays every
    # accepted file to its end, and its length is the one recorded
    for name, asset in accepted.items():
        assert abs(_decode_fully(shared_dir / "corpus" / "audio" / name) - asset.duration_ms / 1000) < 0.002, name
    # titles and track numbers come from the tags
    by_file = {t.original_filename: t for t in release.tracks}
    assert by_file["multipage-setup.ogg"].title == "Burst"
    assert by_file["silence-44-s.mp3"].title == "Silence"


def _decode_fully(path) -> float:
    """Seconds of audio FFmpeg decodes from the file's first audio stream; raises if it cannot."""
    seconds = 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            seconds += frame.samples / frame.sample_rate
    return seconds


@pytest.mark.parametrize("name", ["silence-44-s.flac", "no-tags.mp3"])
def test_corpus_files_keep_their_bytes(shared_dir, store, name):
    import hashlib

    from catalog.uploads import receive_and_inspect

    path = shared_dir / "corpus" / "audio" / name
    with path.open("rb") as fh:
        pending, info = receive_and_inspect(store, fh, max_bytes=None)
    stored = pending.commit()
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
