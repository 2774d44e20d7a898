"""The demo's synthesizer makes music: deterministic, 2–4 minutes, not silence and not a bare tone."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from app.seed.music import RATE, STYLES, compose, demo_length_s, demo_master


def test_same_seed_same_music_other_seed_other_music():
    first, again, other = compose(5, 20, "rock"), compose(5, 20, "rock"), compose(6, 20, "rock")
    assert np.array_equal(first, again)
    assert first.shape != other.shape or not np.allclose(first, other)


@pytest.mark.parametrize("style", list(STYLES))
def test_music_not_silence_not_a_tone(style):
    audio = compose(42, 24, style)
    assert audio.dtype == np.float32 and audio.shape[1] == 2
    assert 0.5 < float(np.max(np.abs(audio))) <= 0.9  # normalised, never clipping
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.05  # not silence
    mono = audio.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono[: RATE * 8]))
    strong = np.sort(spectrum)[::-1]
    # a tone puts nearly everything in one bin; music spreads over many notes and harmonics
    assert strong[0] / spectrum.sum() < 0.05
    assert (spectrum > strong[0] * 0.1).sum() > 50
    # it changes over time (notes, beats, sections): loudness of half-second windows varies
    windows = mono[: len(mono) // (RATE // 2) * (RATE // 2)].reshape(-1, RATE // 2)
    loudness = np.sqrt((windows ** 2).mean(axis=1))
    assert loudness.std() / loudness.mean() > 0.05
    # the two channels differ (panning, delay)
    assert not np.allclose(audio[:, 0], audio[:, 1])


def test_demo_masters_are_believable_lengths_in_flac():
    for title in ("Snowfield", "Midnight Sun", "Neon Rain", "Parade Start"):
        assert 120 <= demo_length_s(title) <= 240
    data = demo_master("Snowfield", "ambient", bits=24)
    info = soundfile.info(io.BytesIO(data))
    assert info.format == "FLAC" and info.subtype == "PCM_24" and info.samplerate == RATE
    # whole bars (four at a time) near the asked length, plus the last notes' tail
    assert abs(info.duration - demo_length_s("Snowfield")) <= 16
