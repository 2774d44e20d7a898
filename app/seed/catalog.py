"""Demo catalog: artists with published releases of real music (app.seed.music synthesizes each track,
2–4 minutes, as a FLAC master; the Polar Drift album is 24-bit). The media seeder makes their copies.

Puts ids in `state` for later seeders: state["artists"], state["payees"], state["releases"], state["tracks"]
(lists of ids), and state["catalog"] with what each one is (free/fixed/name-your-price, the 70/30 track).
"""

from __future__ import annotations

import io
import struct
import zlib
from datetime import date

import numpy as np
import soundfile

from app.seed.accounts import DEMO_PASSWORD
from app.seed.music import demo_master
from catalog import services
from catalog.storage import MediaStore
from catalog.uploads import store_cover, upload_track
from core.users import create_user

ORDER = 20

# (slug, name, location, bio, currency, release) — release: title, kind, genre, tags, price, tracks, colour
ARTISTS = [
    ("aurora-fields", "Aurora Fields", "Tromsø, Norway", "Slow ambient music made under the northern lights.",
     {"title": "Polar Drift", "kind": "album", "genre": "ambient", "tags": ["drone", "field recordings"],
      "price": ("free_with_ads",), "format": "flac", "bits": 24, "colour": (40, 90, 160),
      "tracks": [("Snowfield", 220.0), ("Midnight Sun", 330.0), ("Ice Choir", 262.0)]}),
    ("the-night-owls", "The Night Owls", "Glasgow, Scotland", "Three friends, one van, too many amplifiers.",
     {"title": "Lamplight EP", "kind": "ep", "genre": "rock", "tags": ["indie", "guitar"],
      "price": ("fixed", "5.00"), "format": "flac", "colour": (170, 60, 40),
      "tracks": [("Streetlight Serenade", 196.0), ("Last Bus Home", 247.0)]}),
    ("mina-kato", "Mina Kato", "Osaka, Japan", "Bedroom electronica with a cassette deck and a cat.",
     {"title": "Neon Rain", "kind": "single", "genre": "electronic", "tags": ["synthwave", "lofi"],
      "price": ("name_your_price", "1.00", "3.00"), "format": "flac", "colour": (150, 40, 150),
      "tracks": [("Neon Rain", 392.0)], "collaborator": ("leo.park@example.com", "Leo Park", 3000)}),
    ("delta-brass", "Delta Brass", "New Orleans, USA", "A brass band that never learned to play quietly.",
     {"title": "Second Line Sunday", "kind": "album", "genre": "jazz", "tags": ["brass", "new orleans"],
      "price": ("free_with_ads",), "format": "flac", "colour": (200, 150, 30),
      "tracks": [("Parade Start", 294.0), ("Frenchmen Street", 349.0)],
      "collaborator": ("june@example.com", "June Trombone", 3000)}),
]


def demo_tone(fmt: str, frequency: float, seconds: float = 4.0, rate: int = 44100) -> bytes:
    """A few seconds of a soft chord with a fade, encoded as FLAC, MP3, Ogg Vorbis or WAV."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * frequency * m * t) / (i + 1) for i, m in enumerate((1.0, 1.25, 1.5)))
    envelope = np.minimum(1.0, np.minimum(t / 0.3, (seconds - t) / 0.8))
    samples = (0.2 * wave * envelope).astype(np.float32)
    container, subtype = {"flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
                          "ogg": ("OGG", "VORBIS"), "wav": ("WAV", "PCM_16")}[fmt]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([samples, samples * 0.9], axis=1), rate, format=container, subtype=subtype)
    return buffer.getvalue()


def cover_png(colour: tuple[int, int, int], size: int = 240) -> bytes:
    """A plain gradient PNG (written by hand: no imaging library needed)."""
    r, g, b = colour
    rows = []
    for y in range(size):
        shade = 0.55 + 0.45 * (y / size)
        pixel = bytes((int(r * shade), int(g * shade), int(b * shade)))
        rows.append(b"\x00" + pixel * size)
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def seed(runtime, state: dict) -> None:
    store = MediaStore(runtime.config.media_path)
    clock = runtime.clock
    session = runtime.sessions()
    artists, payees, releases, tracks = [], [], [], []
    details: dict = {"free_releases": [], "fixed_releases": [], "name_your_price_releases": [],
                     "split_70_30_tracks": [], "by_slug": {}}
    try:
        for slug, name, location, bio, spec in ARTISTS:
            user = create_user(session, email=f"{slug}@artists.ninety.test", password=DEMO_PASSWORD,
                               display_name=name, roles=["artist"])
            session.flush()
            artist = services.create_artist(session, user=user, name=name, location=location, bio=bio,
                                            slug=slug, currency="USD")
            own = services.artist_payee(session, artist.id)
            artists.append(artist.id)
            payees.append(own.id)
            release = services.create_release(session, artist.id, title=spec["title"], kind=spec["kind"],
                                              genre=spec["genre"], tags=spec["tags"], release_date=date(2026, 9, 1),
                                              description=f"{spec['title']} by {name}, a Ninety demo release.")
            sha, mime = store_cover(store, cover_png(spec["colour"]))
            services.set_cover(session, release, sha, mime)
            for position, (title, _frequency) in enumerate(spec["tracks"], start=1):
                audio = demo_master(title, spec["genre"], bits=spec.get("bits", 16))
                result = upload_track(session, store, release, io.BytesIO(audio),
                                      f"{position:02d} {title}.{spec['format']}", clock=clock, max_bytes=None,
                                      user_id=user.id, title=title, position=position)
                tracks.append(result.track.id)
            model, *amounts = spec["price"]
            if model == "fixed":
                services.set_release_price(session, release, model, price=amounts[0])
                details["fixed_releases"].append(release.id)
            elif model == "name_your_price":
                services.set_release_price(session, release, model, minimum=amounts[0], suggested=amounts[1])
                details["name_your_price_releases"].append(release.id)
            else:
                details["free_releases"].append(release.id)
            if "collaborator" in spec:
                email, collaborator, share_bp = spec["collaborator"]
                friend = services.invite_payee(session, artist.id, email=email, display_name=collaborator)
                payees.append(friend.id)
                services.set_release_split(session, release, [(own.id, 10_000 - share_bp), (friend.id, share_bp)],
                                           clock=clock, user_id=user.id)
                details["split_70_30_tracks"].extend(t.id for t in release.tracks)
            services.publish_release(session, release, clock=clock)
            releases.append(release.id)
            details["by_slug"][slug] = {"artist_id": artist.id, "payee_id": own.id, "release_id": release.id,
                                        "track_ids": [t.id for t in release.tracks]}
        session.commit()
    finally:
        session.close()
    state["artists"], state["payees"], state["releases"], state["tracks"] = artists, payees, releases, tracks
    state["catalog"] = details
