"""Catalog factories and generated audio fixtures (tones written with soundfile, tagged with mutagen).

Catalog services never commit; each factory commits what it made, as a request or a CLI command would."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from catalog import services
from catalog.storage import MediaStore
from core.clock import FrozenClock
from core.users import get_user

FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
           "mp3": ("MP3", "MPEG_LAYER_III"), "aiff": ("AIFF", "PCM_16")}


def tone(fmt: str = "wav", seconds: float = 1.0, frequency: float = 440.0, rate: int = 44100) -> bytes:
    """A few seconds of a sine tone encoded as `fmt` (wav, flac, ogg, mp3, aiff)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    stereo = np.stack([samples, samples], axis=1)
    buffer = io.BytesIO()
    container, subtype = FORMATS[fmt]
    soundfile.write(buffer, stereo, rate, format=container, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def store(tmp_path):
    return MediaStore(tmp_path / "media")


@pytest.fixture
def artist_user(make_user):
    return make_user(roles=("artist",))


@pytest.fixture
def make_artist(db_session):
    def make(user, name="The Tones", currency="USD"):
        artist = services.create_artist(db_session, user=get_user(db_session, user.id), name=name,
                                        currency=currency)
        db_session.commit()  # services never commit: the factory owns its unit of work
        return artist

    return make


@pytest.fixture
def artist(make_artist, artist_user):
    return make_artist(artist_user)


@pytest.fixture
def make_published_track(db_session, store, clock):
    """make_published_track(artist, title=..., fmt=...) -> Track on a published release."""
    from catalog.uploads import upload_track

    def make(artist, title="Sine Song", fmt="wav", release_title="First Light", genre="ambient",
             tags=("drone",), frequency=440.0):
        release = services.create_release(db_session, artist.id, title=release_title, genre=genre, tags=list(tags))
        result = upload_track(db_session, store, release, io.BytesIO(tone(fmt, frequency=frequency)),
                              f"01 {title}.{fmt}", clock=clock, max_bytes=None, title=title)
        services.publish_release(db_session, release, clock=clock)
        db_session.commit()
        return result.track

    return make
