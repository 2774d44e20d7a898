"""A small world for the takedown pages and API: an artist with published tracks, a rights holder, an
admin, on an app with a frozen clock. Each factory commits its own unit of work, as a request would."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import soundfile

from catalog import services as catalog
from catalog.storage import MediaStore
from catalog.uploads import upload_track
from core.clock import FrozenClock
from core.db import transaction
from core.users import create_user, get_user
from rights.staydown import screen_upload

FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}

PASSWORD = "correct horse battery"
START = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)  # a Wednesday


@dataclass
class RightsWorld:
    app: object
    clock: FrozenClock
    melodies: list = field(default_factory=list)
    funded: bool = False

    @property
    def runtime(self):
        return self.app.extensions["ninety"]

    def user(self, *roles: str, name: str | None = None):
        with transaction(self.runtime.sessions) as s:
            user = create_user(s, email=f"{(name or roles[0]).lower().replace(' ', '')}-{uuid.uuid4().hex[:6]}@example.com",
                               password=PASSWORD, display_name=name, roles=list(roles))
            s.flush()
            s.expunge(user)
        return user

    def artist(self, name: str = "Nova", *, tracks: int = 1):
        """An artist user, its artist profile and a published release of `tracks` distinct tunes, uploaded as the app does
        (screened for stay-down, which also remembers each file's fingerprint)."""
        user = self.user("artist", name=name)
        store = MediaStore(self.runtime.config.media_path)
        with transaction(self.runtime.sessions) as s:
            artist = catalog.create_artist(s, user=get_user(s, user.id), name=name)
            release = catalog.create_release(s, artist.id, title=f"{name} EP", genre="ambient")
            track_ids = []
            for index in range(tracks):
                self.melodies.append(len(self.melodies) + 1)
                result = upload_track(s, store, release, io.BytesIO(melody(self.melodies[-1])),
                                      f"{index + 1:02d} Song {index + 1}.wav", clock=self.clock, max_bytes=None,
                                      title=f"{name} song {index + 1}", screen=screen_upload)
                track_ids.append(result.track.id)
            catalog.publish_release(s, release, clock=self.clock)
            info = {"user": user, "artist_id": artist.id, "release_id": release.id, "tracks": track_ids,
                    "release_url": f"/artists/{artist.slug}/{release.slug}",
                    "payee_id": catalog.artist_payee(s, artist.id).id}
        return info


def melody(seed: int, *, seconds: float = 12.0, fmt: str = "wav", rate: int = 22050) -> bytes:
    """A few seconds of notes (a random tune per seed, with harmonics), encoded as `fmt`: distinct tunes have
    distinct acoustic fingerprints, and one tune encoded twice has the same one."""
    rng = np.random.default_rng(seed)
    note_s = 0.25
    t = np.arange(int(note_s * rate)) / rate
    envelope = np.minimum(1.0, np.minimum(t, note_s - t) * 40)
    notes = []
    for _ in range(int(seconds / note_s)):
        f = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        notes.append(envelope * sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)))
    samples = (0.25 * np.concatenate(notes)).astype(np.float32)
    buffer = io.BytesIO()
    container, subtype = FORMATS[fmt]
    soundfile.write(buffer, np.stack([samples, samples], axis=1), rate, format=container, subtype=subtype)
    return buffer.getvalue()


def notice_payload(*tracks, title: str = "Moonlight Sonata (2019 recording)", **overrides) -> dict:
    payload = {
        "claimant": {"name": "Rita Rights", "email": "rita@labels.test", "address": "1 Label Street, Nashville TN",
                     "phone": "+1 615 555 0100"},
        "works": [{"title": title, "description": "A copy of our master recording, unlicensed.",
                   "tracks": list(tracks)}],
        "statements": {"good_faith": True, "accurate": True, "authorized": True},
        "signature": "Rita Rights",
    }
    payload.update(overrides)
    return payload


def portal_form(*tracks, **overrides) -> dict:
    """The portal's form fields for a complete one-work notice."""
    form = {"csrf_token": "test-csrf", "works_count": "1", "claimant_name": "Rita Rights",
            "claimant_email": "rita@labels.test", "claimant_address": "1 Label Street, Nashville TN",
            "claimant_phone": "", "works-0-title": "Moonlight Sonata (2019 recording)",
            "works-0-description": "A copy of our master recording, unlicensed.",
            "works-0-tracks": "\n".join(str(t) for t in tracks), "good_faith": "yes", "accurate": "yes",
            "authorized": "yes", "signature": "Rita Rights"}
    form.update(overrides)
    return form


def earn(world: RightsWorld, track_id: int, price_micros: int, at) -> None:
    """Gate impressions of `track_id` worth `price_micros`, through the flush's own code (royalties.flush),
    so a track under notice has its earnings routed as the flush routes them (held for the case)."""
    from adserver.stream import StreamImpression
    from ledger import services as ledger
    from ledger.accounts import STRIPE, advertiser_prepaid
    from royalties.flush import flush_impressions

    with transaction(world.runtime.sessions) as s:
        if not world.funded:
            ledger.post(s, ledger.Entry("fund:rights-world", datetime(2026, 1, 1, tzinfo=UTC), "funding", [
                ledger.Posting(STRIPE, "debit", 10**12, "USD"),
                ledger.Posting(advertiser_prepaid(1), "credit", 10**12, "USD")], metadata={"event": "advertiser_funding"}))
            world.funded = True
        flush_impressions(s, [StreamImpression(uuid.uuid4().hex, 1, 1, 1, "gate", track_id, f"g{uuid.uuid4().hex[:8]}",
                                               "gate", price_micros, "USD", at)])
