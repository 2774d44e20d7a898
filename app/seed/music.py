"""A small deterministic synthesizer for the demo's tracks: real, listenable music, not tones.

`compose(seed, seconds, style)` returns stereo float32 samples: a chord progression in a key picked by the
seed, played by a pad, a bass line, a melody drawn from the scale (a seeded random walk that repeats and
varies its phrases), and simple drums (kick, snare, hi-hat), arranged in sections (intro, verses, choruses,
a bridge, an outro that fades), with envelopes, a little stereo width and a feedback delay on the lead.
The same seed always gives the same samples, so the demo's audio (and its content addresses) are stable.

Styles (the demo's genres): "ambient" (slow, no drums, long pads), "rock" (driving drums, a distorted
lead), "electronic" (arpeggios, four-on-the-floor), "jazz" (swung eighths, a brassy lead, walking bass).
"""

from __future__ import annotations

import numpy as np

RATE = 44100
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
# progressions as scale degrees (0-based) of the chord roots
_PROGRESSIONS = {"major": [(0, 4, 5, 3), (0, 5, 3, 4), (3, 0, 4, 5), (0, 3, 5, 4)],
                 "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 5, 3, 4)],
                 "dorian": [(0, 3, 0, 3), (0, 6, 3, 0), (0, 1, 3, 0)]}
STYLES = {
    "ambient": {"bpm": (66, 80), "scale": ("major", "dorian"), "drums": 0.0, "lead": "bell", "swing": 0.0,
                "pad": 0.55, "arp": False, "lead_density": 0.35},
    "rock": {"bpm": (108, 132), "scale": ("minor", "major"), "drums": 1.0, "lead": "drive", "swing": 0.0,
             "pad": 0.3, "arp": False, "lead_density": 0.7},
    "electronic": {"bpm": (96, 118), "scale": ("minor", "dorian"), "drums": 0.8, "lead": "saw", "swing": 0.0,
                   "pad": 0.4, "arp": True, "lead_density": 0.6},
    "jazz": {"bpm": (112, 140), "scale": ("dorian", "major"), "drums": 0.6, "lead": "brass", "swing": 0.33,
             "pad": 0.35, "arp": False, "lead_density": 0.75},
}


def _freq(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _adsr(n: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    a, d, r = int(attack * RATE), int(decay * RATE), int(release * RATE)
    env = np.full(n, sustain, dtype=np.float32)
    a = min(a, n)
    env[:a] = np.linspace(0, 1, a, endpoint=False) if a else env[:a]
    d_end = min(n, a + d)
    if d_end > a:
        env[a:d_end] = np.linspace(1, sustain, d_end - a, endpoint=False)
    if r and n > r:
        env[n - r:] *= np.linspace(1, 0, r)
    return env


def _tone(freq: float, n: int, timbre: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / RATE
    if timbre == "bell":
        wave = (np.sin(2 * np.pi * freq * t) + 0.35 * np.sin(2 * np.pi * freq * 2.76 * t) * np.exp(-t * 3)
                + 0.2 * np.sin(2 * np.pi * freq * 5.4 * t) * np.exp(-t * 6))
    elif timbre == "brass":
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(1, t * 3)
        phase = 2 * np.pi * freq * np.cumsum(vibrato) / RATE
        wave = sum(np.sin(k * phase) * (0.8 ** k) * (1 + 0.3 * (k > 2) * np.minimum(1, t * 8))
                   for k in range(1, 8))
    elif timbre in ("saw", "drive"):
        detune = (1.0, 1.004, 0.996)
        wave = sum(2 * ((freq * d * t + rng.random()) % 1.0) - 1 for d in detune) / 3
        if timbre == "drive":
            wave = np.tanh(wave * 3.5) * 0.8
    elif timbre == "pad":
        wave = sum(np.sin(2 * np.pi * freq * d * t + p) for d, p in ((1.0, 0), (1.003, 1.0), (0.997, 2.0), (2.0, 0.5)))
        wave /= 3.2
    else:  # "bass"
        wave = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t) + 0.1 * np.sin(6 * np.pi * freq * t)
    return wave.astype(np.float32)


def _lowpass(signal: np.ndarray, cutoff: float) -> np.ndarray:
    """A one-pole low-pass, run in blocks with numpy (an exact recursive filter would be a Python loop)."""
    alpha = 1 - np.exp(-2 * np.pi * cutoff / RATE)
    # y[n] = y[n-1] + alpha (x[n] - y[n-1]) ~ convolution with a truncated exponential kernel
    length = int(min(RATE // 10, 5 / alpha))
    kernel = alpha * (1 - alpha) ** np.arange(length, dtype=np.float32)
    return np.convolve(signal, kernel.astype(np.float32), mode="full")[: len(signal)].astype(np.float32)


class _Mix:
    def __init__(self, n: int) -> None:
        self.left = np.zeros(n, dtype=np.float32)
        self.right = np.zeros(n, dtype=np.float32)

    def add(self, start: int, sound: np.ndarray, gain: float, pan: float = 0.0) -> None:
        if start >= len(self.left) or start < 0:
            return
        end = min(len(self.left), start + len(sound))
        piece = sound[: end - start] * gain
        self.left[start:end] += piece * (1 - pan) ** 0.5  # constant-power pan
        self.right[start:end] += piece * (1 + pan) ** 0.5


def _kick(rng) -> np.ndarray:
    n = int(0.35 * RATE)
    t = np.arange(n) / RATE
    freq = 45 + 90 * np.exp(-t * 30)
    return (np.sin(2 * np.pi * np.cumsum(freq) / RATE) * np.exp(-t * 9)).astype(np.float32)


def _snare(rng) -> np.ndarray:
    n = int(0.25 * RATE)
    t = np.arange(n) / RATE
    noise = rng.standard_normal(n).astype(np.float32)
    noise = noise - _lowpass(noise, 1500)
    return (0.7 * noise * np.exp(-t * 18) + 0.4 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)).astype(np.float32)


def _hat(rng, open_: bool = False) -> np.ndarray:
    n = int((0.18 if open_ else 0.05) * RATE)
    t = np.arange(n) / RATE
    noise = rng.standard_normal(n).astype(np.float32)
    noise = noise - _lowpass(noise, 7000)
    return (noise * np.exp(-t * (20 if open_ else 70))).astype(np.float32)


def compose(seed: int, seconds: float, style: str = "electronic") -> np.ndarray:
    """`seconds` (rounded to whole bars) of music in `style`, as float32 (samples, 2), peak -1 dBFS."""
    spec = STYLES[style]
    rng = np.random.default_rng(seed)
    bpm = float(rng.integers(spec["bpm"][0], spec["bpm"][1] + 1))
    beat = 60.0 / bpm
    bar = 4 * beat
    bars = max(8, int(round(seconds / bar / 4)) * 4)
    scale_name = spec["scale"][int(rng.integers(len(spec["scale"])))]
    scale = _SCALES[scale_name]
    root = int(rng.integers(45, 53))  # A2..C#3-ish
    progression = _PROGRESSIONS[scale_name][int(rng.integers(len(_PROGRESSIONS[scale_name])))]
    chorus_progression = _PROGRESSIONS[scale_name][int(rng.integers(len(_PROGRESSIONS[scale_name])))]
    n = int((bars * bar + 2.5) * RATE)
    mix = _Mix(n)

    def degree(d: int, octave: int = 0) -> int:
        return root + scale[d % 7] + 12 * (d // 7 + octave)

    # arrangement: intro 4, verse 8, chorus 8, verse 8, chorus 8, bridge 4/8, chorus 8, outro 4 (scaled)
    plan: list[str] = []
    while len(plan) < bars:
        for section, length in (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8),
                                ("bridge", 8), ("chorus", 8), ("verse", 8)):
            plan.extend([section] * length)
    plan = plan[: bars - 4] + ["outro"] * 4

    # two melodic phrases (one bar of eighth-note steps each), repeated with variations
    def phrase() -> list[int | None]:
        steps, position = [], int(rng.integers(0, 5))
        for _ in range(8):
            if rng.random() > spec["lead_density"]:
                steps.append(None)
                continue
            position = int(np.clip(position + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3]), -2, 9))
            steps.append(position)
        return steps

    phrases = {"verse": [phrase(), phrase()], "chorus": [phrase(), phrase()], "bridge": [phrase(), phrase()]}
    drum_rng = np.random.default_rng(seed + 1)
    kick, snare, hat, open_hat = _kick(drum_rng), _snare(drum_rng), _hat(drum_rng), _hat(drum_rng, True)
    pad_cache: dict[tuple[int, int], np.ndarray] = {}
    lead_cache: dict[tuple[int, int], np.ndarray] = {}

    for index, section in enumerate(plan):
        start_s = index * bar
        chords = chorus_progression if section == "chorus" else progression
        chord_root = chords[index % len(chords)]
        intensity = {"intro": 0.5, "verse": 0.8, "chorus": 1.0, "bridge": 0.7, "outro": 0.6}[section]
        # pad: a triad (+ seventh in jazz) held for the bar
        notes = [degree(chord_root, 1), degree(chord_root + 2, 1), degree(chord_root + 4, 1)]
        if style == "jazz":
            notes.append(degree(chord_root + 6, 1))
        pad_len = int(bar * RATE * 1.05)
        for k, note in enumerate(notes):
            key = (note, pad_len)
            if key not in pad_cache:
                pad_cache[key] = _lowpass(_tone(_freq(note), pad_len, "pad", rng), 1800) * _adsr(
                    pad_len, 0.4 if style == "ambient" else 0.05, 0.3, 0.8, 0.3)
            mix.add(int(start_s * RATE), pad_cache[key], spec["pad"] * intensity / len(notes), pan=(k - 1) * 0.4)
        # bass
        if section != "intro" or style == "ambient":
            pattern = ([0, 2, 2.5, 3] if style == "rock" else [0, 1, 2, 3] if style == "jazz" else [0, 1.5, 2, 3.5])
            for step, offset in enumerate(pattern):
                if style == "jazz":
                    note = degree(chord_root + (0, 2, 4, 5)[step], -1)
                else:
                    note = degree(chord_root, -1) + (12 if step == 2 and style == "electronic" else 0)
                length = int(beat * RATE * (0.9 if style != "ambient" else 3.8))
                tone = _lowpass(_tone(_freq(note), length, "bass", rng), 900) * _adsr(length, 0.005, 0.2, 0.6, 0.05)
                mix.add(int((start_s + offset * beat) * RATE), tone, 0.45 * intensity)
                if style == "ambient":
                    break
        # arpeggio
        if spec["arp"] and section in ("verse", "chorus", "bridge"):
            for step in range(16):
                note = notes[step % 3] + 12 * (step // 8)
                length = int(beat / 4 * RATE * 0.9)
                tone = _lowpass(_tone(_freq(note), length, "saw", rng), 3000) * _adsr(length, 0.002, 0.05, 0.3, 0.02)
                mix.add(int((start_s + step * beat / 4) * RATE), tone, 0.12 * intensity, pan=0.5 * np.sin(step))
        # melody
        if section in ("verse", "chorus", "bridge"):
            steps = phrases[section][index % 2]
            if index % 4 == 3:  # a variation every fourth bar
                steps = [s + int(rng.integers(-1, 2)) if s is not None else None for s in steps]
            octave = 2 if section == "chorus" else 1
            for step, position in enumerate(steps):
                if position is None:
                    continue
                swing = spec["swing"] * beat / 2 if step % 2 else 0.0
                note = degree(position, octave) - 12 * (style == "jazz")
                hold = 1 if step + 1 < len(steps) and steps[step + 1] is not None else 2
                length = int(beat / 2 * hold * RATE)
                key = (note, length)
                if key not in lead_cache:
                    body = _tone(_freq(note), length, spec["lead"], rng)
                    if spec["lead"] in ("saw", "drive", "brass"):
                        body = _lowpass(body, 2600 if spec["lead"] != "drive" else 3500)
                    lead_cache[key] = body * _adsr(length, 0.01, 0.1, 0.7, min(0.08, length / RATE / 3))
                at = int((start_s + step * beat / 2 + swing) * RATE)
                gain = 0.28 * intensity
                mix.add(at, lead_cache[key], gain, pan=-0.15)
                # feedback delay (dotted eighth), panned the other way
                for echo in range(1, 4):
                    mix.add(at + int(echo * 0.75 * beat * RATE), lead_cache[key], gain * 0.35 ** echo,
                            pan=0.5 if echo % 2 else -0.5)
        # drums
        if spec["drums"] and section not in ("intro",):
            level = spec["drums"] * intensity * (0.6 if section == "outro" else 1.0)
            for b in range(4):
                at = start_s + b * beat
                if style == "electronic" or b in (0, 2) or (style == "rock" and b == 3 and index % 2):
                    mix.add(int(at * RATE), kick, 0.7 * level)
                if b in (1, 3) and style != "electronic" or (style == "electronic" and b in (1, 3)):
                    mix.add(int(at * RATE), snare, (0.35 if style == "jazz" else 0.45) * level, pan=0.1)
                for half in range(2):
                    swing = spec["swing"] * beat / 2 if half else 0.0
                    sound = open_hat if (style == "electronic" and half) else hat
                    mix.add(int((at + half * beat / 2 + swing) * RATE), sound, 0.18 * level, pan=0.35)
            if index % 8 == 7:  # a fill into the next section
                for k in range(4):
                    mix.add(int((start_s + 3 * beat + k * beat / 4) * RATE), snare, 0.3 * level, pan=-0.2 + 0.13 * k)

    stereo = np.stack([mix.left, mix.right], axis=1)
    fade = int(4.0 * RATE)
    stereo[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None] ** 2
    stereo[: int(0.02 * RATE)] *= np.linspace(0, 1, int(0.02 * RATE), dtype=np.float32)[:, None]
    stereo = np.tanh(stereo * 1.2)
    peak = float(np.max(np.abs(stereo))) or 1.0
    return (stereo / peak * 0.89).astype(np.float32)


GENRE_STYLES = {"ambient": "ambient", "rock": "rock", "electronic": "electronic", "jazz": "jazz"}


def demo_length_s(title: str) -> float:
    """A believable length for a demo track, 2:00–4:00, fixed by its title."""
    import zlib

    return 120.0 + zlib.crc32(title.encode()) % 121


def demo_master(title: str, genre: str, *, bits: int = 16, seconds: float | None = None) -> bytes:
    """The demo track called `title` as a FLAC master (16- or 24-bit, 44.1 kHz): the same bytes every run."""
    import io
    import zlib

    import soundfile

    samples = compose(zlib.crc32(title.encode()), seconds or demo_length_s(title), GENRE_STYLES.get(genre, "electronic"))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="FLAC", subtype="PCM_24" if bits == 24 else "PCM_16")
    return buffer.getvalue()
