"""Demo takedowns, made through the real services and the clock: rights@ninety.test (a rights holder) files
two notices from the portal's code path.

- One, three weeks ago, was actioned, counter-notified the next day and restored by the timer once ten
  business days had passed; the ads its track earned while it was down (this month) were held and then
  released to the artist.
- One, filed an hour ago, was actioned at once: its track is down now, and the ads it earned since are held
  for the case (the dashboard shows them as held; no payout batch includes them).

The ad earnings go through the real ad path (a signed decision, its beacon charged in Redis, the flush
worker's code), like the royalties seed, so Redis budgets and the books still agree afterwards.
"""

from __future__ import annotations

import random
from datetime import timedelta

from core.clock import FrozenClock

ORDER = 50
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
CLAIMANT = {"name": "Rita Rights", "email": "rights@ninety.test", "address": "1 Label Street, Nashville TN 37203",
            "phone": "+1 615 555 0100", "acting_for": "Moonlight Records"}
STATEMENTS = {"good_faith": True, "accurate": True, "authorized": True}
GATE_VIEWS = 12


def _payload(track_id: int, title: str) -> dict:
    return {"claimant": CLAIMANT, "statements": STATEMENTS, "signature": "Rita Rights",
            "works": [{"title": title, "description": "An unlicensed copy of our master recording.",
                       "tracks": [f"track:{track_id}"]}]}


def _counter(user) -> dict:
    return {"name": user.display_name, "address": "2 Studio Lane, Berlin", "phone": "+49 30 555 0100",
            "email": user.email, "statement_mistake": True, "consent_jurisdiction": True,
            "explanation": "I composed and recorded this piece myself; the claimant's recording is a different one.",
            "signature": user.display_name}


def _show_gate_ads(runtime, session, track_id: int, start, rng: random.Random) -> None:
    """A few gate impressions of `track_id` after `start`, charged in Redis and flushed into the books."""
    from adserver import services as ads
    from adserver.ivt import new_listener_id
    from catalog.services import track_context
    from core.money import Money
    from royalties.worker import run_worker

    cfg, redis = runtime.config, runtime.redis
    floor_cpm_micros = Money.parse(cfg.ad_floor_cpm, cfg.currency).micros
    limits = ads.Limits.parse(cfg.ad_beacon_limits)
    genre = track_context(session, track_id).get("genre")
    for index in range(GATE_VIEWS):
        at = start + timedelta(minutes=2 * index)
        simulated = FrozenClock(at)
        listener_id = new_listener_id(at - timedelta(days=20 + index))
        ip = f"198.18.{200 + index % 50}.{index + 1}"
        ctx = {"listener_id": listener_id, "mode": "gate", "ip": ip, "user_agent": BROWSER_UA,
               "track_id": track_id, "genre": genre}
        placement = ads.decide(redis, session, "gate", ctx, secret=cfg.secret_key, clock=simulated,
                               floor_cpm_micros=floor_cpm_micros, currency=cfg.currency, ttl_s=cfg.ad_decision_ttl_s,
                               min_view_s=cfg.ad_min_view_s, rng=rng)
        if placement is None:
            continue
        simulated.set(at + timedelta(seconds=2))
        limit = ads.campaign_limits(session, redis, placement.decision.campaign_id, now=simulated.now())
        ads.record_impression(redis, placement.token,
                              ads.Visitor(ip=ip, user_agent=BROWSER_UA, listener_id=listener_id, headers={}),
                              secret=cfg.secret_key, clock=simulated, campaign_limits=limit, limits=limits)
    session.commit()
    run_worker(redis, runtime.sessions, consumer="demo-seed-rights", batch_size=cfg.worker_batch_size, block_ms=1,
               max_idle_loops=1)


def seed(runtime, state: dict) -> None:
    from sqlalchemy import select

    from catalog.models import ArtistMember, Track
    from core.users import User, get_user
    from rights import services as rights

    tracks = state.get("tracks") or []
    users = state.get("users") or {}
    if len(tracks) < 2 or "rights@ninety.test" not in users or "admin@ninety.test" not in users:
        return
    settings = rights.RightsSettings.from_config(runtime.config)
    now = runtime.clock.now()
    rng = random.Random(11)
    session = runtime.sessions()
    try:
        claimant = get_user(session, users["rights@ninety.test"])
        admin = get_user(session, users["admin@ninety.test"])
        restored_track, held_track = session.get(Track, tracks[-2]), session.get(Track, tracks[-1])

        def artist_user(track) -> User:
            user_id = session.scalar(select(ArtistMember.user_id).where(
                ArtistMember.artist_id == track.release.artist_id).order_by(ArtistMember.user_id).limit(1))
            return get_user(session, user_id)

        # Restored: filed three weeks ago, actioned three hours later, counter-notified the next day.
        past = FrozenClock(now - timedelta(days=21))
        first = rights.file_notice(session, claimant, _payload(restored_track.id, "Nocturne in Blue (2021 master)"),
                                   clock=past, settings=settings, idempotency_key="demo-restored", source="portal")
        past.advance(hours=3)
        rights.action_notice(session, first.id, admin, clock=past, settings=settings,
                             reason="The notice identifies the recording and the track; disabled pending any "
                                    "counter-notice.")
        past.advance(days=1)
        case = first.cases[0]
        rights.file_counter_notice(session, case.id, artist_user(restored_track), _counter(artist_user(restored_track)),
                                   clock=past, settings=settings)
        session.commit()
        # What the track earned while countered (this month) is held; the timer then restores it and releases it.
        _show_gate_ads(runtime, session, restored_track.id, now - timedelta(hours=3), rng)
        rights.tick(session, clock=runtime.clock, settings=settings)
        session.commit()

        # Actioned, with held earnings: filed an hour and a half ago, actioned half an hour later.
        recent = FrozenClock(now - timedelta(minutes=90))
        second = rights.file_notice(session, claimant, _payload(held_track.id, "Moonlight Sonata (2019 recording)"),
                                    clock=recent, settings=settings, idempotency_key="demo-held", source="api")
        recent.advance(minutes=30)
        rights.action_notice(session, second.id, admin, clock=recent, settings=settings,
                             reason="The claimant identified their master recording; the track is disabled and "
                                    "its earnings are held until the case ends.")
        session.commit()
        _show_gate_ads(runtime, session, held_track.id, now - timedelta(minutes=50), rng)
        state["notices"] = {"restored": first.id, "held": second.id}
    finally:
        session.close()
