"""Demo ads: an advertiser with a funded prepaid balance, campaigns for every slot, and approved display and
audio creatives (a banner drawn and a short spot synthesised here, at seed time).

The money and the campaigns date from before the demo's month of history (HISTORY_DAYS ago), so that
history can run through the real ad path: decisions, beacons and the flush (app/seed/royalties.py)."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta

from core.clock import FrozenClock

ORDER = 30
ADVERTISER_EMAIL = "advertiser@ninety.test"
HISTORY_DAYS = 70  # covers last month and this one, whatever today's date


def banner_png(width: int = 600, height: int = 120) -> bytes:
    """A small gradient banner, encoded as PNG with zlib (no imaging library needed)."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            stripe = (x // 40 + y // 40) % 2
            row += bytes((11 + x * 60 // width, 110 - 30 * stripe, 79 + y * 80 // height))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + chunk(b"IEND", b""))


def audio_spot(seconds: float = 3.0, rate: int = 22050) -> bytes:
    """A three-note chime as a 16-bit mono WAV."""
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    notes = np.select([t < 1, t < 2], [523.25, 659.25], 783.99)
    envelope = np.exp(-3 * (t % 1.0))
    samples = (0.25 * envelope * np.sin(2 * np.pi * notes * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


CAMPAIGNS = [
    # name, slots, kind, bid CPM micros (the gate's winner pays the runner-up's bid: 12.00)
    ("Download gate: banner", ("gate",), "display", 16_000_000),
    ("Download gate: audio spot", ("gate",), "audio", 12_000_000),
    ("Key mode: browse banner", ("browse",), "display", 2_000_000),
    ("Player pre-roll", ("player",), "audio", 5_000_000),
]


def seed(runtime, state: dict) -> None:
    from adserver import services as ads
    from app.seed.accounts import DEMO_PASSWORD
    from core.users import create_user

    session = runtime.sessions()
    try:
        user = create_user(session, email=ADVERTISER_EMAIL, password=DEMO_PASSWORD, display_name="Bright Sound",
                           roles=["advertiser"])
        session.commit()
        currency = runtime.config.currency
        advertiser = ads.create_advertiser(session, name="Bright Sound Headphones", currency=currency,
                                           member_user_ids=[user.id])
        now = runtime.clock.now()
        funded_at = FrozenClock(now - timedelta(days=HISTORY_DAYS))
        ads.fund(session, runtime.redis, advertiser_id=advertiser.id, amount_micros=500_000_000, currency=currency,
                 clock=funded_at, idempotency_key=f"advertiser_funding:{advertiser.id}:demo",
                 note="demo bank transfer")
        reviewer_id = (state.get("users") or {}).get("admin@ninety.test", user.id)
        banner, spot = banner_png(), audio_spot()
        for name, slots, kind, bid in CAMPAIGNS:
            campaign = ads.create_campaign(session, runtime.redis, advertiser.id, ads.CampaignInput(
                name=name, starts_at=funded_at.now(), ends_at=None, total_budget_micros=200_000_000,
                daily_budget_micros=20_000_000, bid_cpm_micros=bid, pacing="asap", slots=slots),
                floor_cpm_micros=0)
            creative = ads.create_creative(
                session, runtime.redis, campaign.id, kind=kind, name=f"{name} ({kind})",
                click_url="https://example.com/bright-sound", alt_text="Bright Sound headphones: hear every note",
                image=banner, audio=spot if kind == "audio" else None, media_root=runtime.config.media_path)
            ads.review_creative(session, runtime.redis, creative.id, approve=True, reviewer_id=reviewer_id,
                                clock=runtime.clock)
        session.commit()  # the seed owns this unit of work; Redis is credited and the book bumped after it
        state["advertiser_id"] = advertiser.id
    finally:
        session.close()
