"""Ad-server factories: advertisers (funded through the ledger), campaigns with approved creatives, a tiny
PNG and a generated audio spot, and a published track with a 70/30 split sheet."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import soundfile

from adserver import services
from adserver.services import CampaignInput
from core.clock import FrozenClock
from tests.cluster import REDIS_MODES, on_each_redis

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e221bc330000000049454e44ae426082")
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FLOOR_CPM = 500_000


def spot(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.2 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(params=REDIS_MODES)
def config(request, config):
    """Every ad-server and flush test runs on one Redis server and on a 3-master Redis Cluster."""
    yield from on_each_redis(request, config)


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 10, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def ad_app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def ad_session(ad_app):
    session = ad_app.extensions["ninety"].sessions()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def ad_redis(ad_app):
    return ad_app.extensions["ninety"].redis


@pytest.fixture
def make_advertiser(ad_session, ad_redis, clock, make_user):
    counter = iter(range(1, 1000))

    def make(funded_micros: int = 100_000_000, currency: str = "USD", user=None):
        n = next(counter)
        user = user or make_user(roles=("advertiser",))
        advertiser = services.create_advertiser(ad_session, name=f"Advertiser {n}", currency=currency,
                                                member_user_ids=[user.id])
        if funded_micros:
            services.fund(ad_session, ad_redis, advertiser_id=advertiser.id, amount_micros=funded_micros,
                          currency=currency, clock=clock, idempotency_key=f"test-fund-{advertiser.id}-{n}")
        ad_session.commit()  # the factory owns its unit of work; the funding reaches Redis on commit
        advertiser.user = user
        return advertiser

    return make


@pytest.fixture
def make_campaign(ad_session, ad_redis, clock, tmp_path):
    def make(advertiser, *, bid_cpm_micros=2_500_000, total=10_000_000, daily=5_000_000, slots=("gate",),
             kinds=("display",), pacing="asap", approve=True, **targeting):
        data = CampaignInput(name="Campaign", starts_at=clock.now() - timedelta(days=1), ends_at=None,
                             total_budget_micros=total, daily_budget_micros=daily, bid_cpm_micros=bid_cpm_micros,
                             pacing=pacing, slots=tuple(slots), **targeting)
        campaign = services.create_campaign(ad_session, ad_redis, advertiser.id, data, floor_cpm_micros=FLOOR_CPM)
        for kind in kinds:
            creative = services.create_creative(
                ad_session, ad_redis, campaign.id, kind=kind, name=f"{kind} spot", click_url="https://example.com/buy",
                alt_text="A bright example banner", image=PNG if kind == "display" else None,
                audio=spot() if kind == "audio" else None, media_root=tmp_path / "media")
            if approve:
                services.review_creative(ad_session, ad_redis, creative.id, approve=True, reviewer_id=advertiser.user.id,
                                         clock=clock)
        ad_session.commit()
        return campaign

    return make


def context(listener="lis-1", track_id=None, mode="gate", **extra):
    return {"listener_id": listener, "track_id": track_id, "mode": mode, "ip": "10.0.0.1",
            "user_agent": BROWSER_UA, **extra}


def visitor(listener="lis-1", ua=BROWSER_UA, ip="10.0.0.1", **headers):
    return services.Visitor(ip=ip, user_agent=ua, listener_id=listener, headers=headers)


@pytest.fixture
def decide(ad_session, ad_redis, clock):
    def run(slot="gate", ctx=None, **kwargs):
        return services.decide(ad_redis, ad_session, slot, ctx or context(), secret="s3cret", clock=clock,
                               floor_cpm_micros=FLOOR_CPM, **kwargs)

    return run


@pytest.fixture
def beacon(ad_session, ad_redis, clock):
    def run(token, who=None, **kwargs):
        from adserver.signing import verify

        decision = verify(token, "s3cret")
        limits = services.campaign_limits(ad_session, ad_redis, decision.campaign_id, now=clock.now())
        return services.record_impression(ad_redis, token, who or visitor(decision.listener_id), secret="s3cret",
                                          clock=clock, campaign_limits=limits, **kwargs)

    return run


def tone_wav(seconds: float = 1.0) -> bytes:
    return spot(seconds, rate=44100)


@pytest.fixture
def make_split_track(ad_session, clock, tmp_path, make_user):
    """make_split_track() -> (track, artist_payee_id, collaborator_payee_id): a published free-with-ads track
    whose split sheet gives the artist 70% and a collaborator 30%."""
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import get_user

    def make(title="Seventy Thirty", genre="ambient", shares=(7000, 3000)):
        user = make_user(roles=("artist",))
        artist = catalog.create_artist(ad_session, user=get_user(ad_session, user.id), name=f"Artist {user.id}")
        collaborator = catalog.invite_payee(ad_session, artist.id, email=f"collab{user.id}@example.com")
        release = catalog.create_release(ad_session, artist.id, title=title, genre=genre, kind="single")
        track = upload_track(ad_session, MediaStore(tmp_path / "media"), release, io.BytesIO(tone_wav()),
                             f"01 {title}.wav", clock=clock, max_bytes=None, title=title).track
        artist_payee = catalog.artist_payee(ad_session, artist.id)
        catalog.set_split_sheet(ad_session, track, [(artist_payee.id, shares[0]), (collaborator.id, shares[1])],
                                clock=clock)
        catalog.publish_release(ad_session, release, clock=clock)
        ad_session.commit()
        track.artist_user = user
        return track, artist_payee.id, collaborator.id

    return make
