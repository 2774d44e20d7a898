"""Demo royalties: a month of ad history through the real ad path, that month closed, payout methods, and a
paid batch (drafted by finance@, approved by approver@); plus this month's earnings so far, so the dashboard's
chart and live balance have something to show.

The history is made the way live traffic is: a simulated clock walks through each day; for each impression
the ad server signs a decision for a listener (an established listener id, from its own address) and the
beacon service verifies, de-duplicates and charges it in Redis with that clock; after each day the flush
worker's code turns the stream into impression rows and ledger entries. So Redis budgets and the books agree
(`ninety ads reconcile` passes right after the seed), and the reports show the history.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from core.clock import FrozenClock

ORDER = 40
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ANONYMOUS_LISTENERS = 240
GATE_PER_TRACK_PER_DAY = (6, 16)   # impressions per track and day (three times that for popular tracks)
KEY_PER_LISTENER_PER_DAY = (3, 10)
# Beacons are round trips to Redis: a few run at once, as they would from many browsers (each with its own
# simulated clock and session).
PARALLEL_VISITORS = 8


def _listeners(rng: random.Random, created_before, users: dict) -> list[tuple[str, str]]:
    """(listener id, IP) pairs: established anonymous ids (made weeks before the history), each on its own
    address spread over many networks (198.18.0.0/15, the benchmarking range), and the demo listener."""
    from adserver.ivt import new_listener_id

    people = [(f"u{users['listener@ninety.test'].id}", "198.19.255.10")]
    for index in range(ANONYMOUS_LISTENERS):
        made = created_before - timedelta(days=rng.randrange(1, 30), seconds=rng.randrange(86400))
        people.append((new_listener_id(made), f"198.{18 + index % 2}.{index * 7 % 250}.{index * 13 % 250 + 1}"))
    return people


def seed(runtime, state: dict) -> None:
    from sqlalchemy import select

    from adserver import services as ads
    from catalog.models import Download, Payee
    from catalog.services import track_context
    from core.money import Money
    from core.users import User
    from payments.services import add_manual_method, add_sepa_method, confirm_method, verify_method
    from royalties.periods import bounds, period_of, previous
    from royalties.rails import default_rails
    from royalties.services import approve_batch, close_period, draft_batch, execute_batch
    from royalties.worker import run_worker

    tracks = state.get("tracks") or []
    if not tracks or not state.get("advertiser_id"):
        return
    clock, cfg, redis = runtime.clock, runtime.config, runtime.redis
    now = clock.now()
    last = previous(period_of(now))
    start, cutoff = bounds(last)
    rng = random.Random(90)
    floor_cpm_micros = Money.parse(cfg.ad_floor_cpm, cfg.currency).micros
    limits = ads.Limits.parse(cfg.ad_beacon_limits)
    session = runtime.sessions()
    try:
        users = {u.email: u for u in session.scalars(select(User))}
        people = _listeners(rng, start, users)
        key_listeners = people[:5]  # key mode while browsing; the last of them never downloads: unattributed
        for listener_id, _ in key_listeners:
            ads.set_key_mode(redis, listener_id, True)
        contexts = {t: track_context(session, t) for t in tracks}
        popular = set(tracks[: max(1, len(tracks) // 2)])

        def show(simulated, chooser, at, listener, track_id=None, user_agent=BROWSER_UA):
            """One ad shown: a signed decision, then its beacon a moment later, both on the simulated clock."""
            listener_id, ip = listener
            simulated.set(at)
            ctx = {"listener_id": listener_id, "mode": "gate" if track_id else "key", "ip": ip,
                   "user_agent": user_agent}
            if track_id:
                ctx.update(track_id=track_id, genre=contexts[track_id].get("genre"))
            placement = ads.decide(redis, visitor_session(), "gate" if track_id else "browse", ctx, secret=cfg.secret_key,
                                   clock=simulated, floor_cpm_micros=floor_cpm_micros, currency=cfg.currency,
                                   ttl_s=cfg.ad_decision_ttl_s, min_view_s=cfg.ad_min_view_s, rng=chooser)
            if placement is None:
                return
            simulated.set(at + timedelta(seconds=1 + chooser.random()))
            limit = ads.campaign_limits(visitor_session(), redis, placement.decision.campaign_id, now=simulated.now())
            ads.record_impression(redis, placement.token,
                                  ads.Visitor(ip=ip, user_agent=user_agent, listener_id=listener_id, headers={}),
                                  secret=cfg.secret_key, clock=simulated, campaign_limits=limit, limits=limits)

        def flush():
            run_worker(redis, runtime.sessions, consumer="demo-seed", batch_size=cfg.worker_batch_size,
                       block_ms=1, max_idle_loops=1)

        def day_of_history(day_start, scale):
            shows = []
            minute = lambda: day_start + timedelta(seconds=rng.randrange(24 * 3600 - 60))  # noqa: E731
            for track_id in tracks:
                weight = 3 if track_id in popular else 1
                for _ in range(int(rng.randint(*GATE_PER_TRACK_PER_DAY) * weight * scale)):
                    shows.append((minute(), rng.choice(people[5:]), track_id, BROWSER_UA))
            for listener in key_listeners:
                for _ in range(int(rng.randint(*KEY_PER_LISTENER_PER_DAY) * scale)):
                    shows.append((minute(), listener, None, BROWSER_UA))
            shows.append((minute(), rng.choice(people[5:]), rng.choice(tracks), BOT_UA))  # refused: a crawler
            shows.sort(key=lambda s: s[0])
            lanes = [(shows[i::PARALLEL_VISITORS], rng.getrandbits(32)) for i in range(PARALLEL_VISITORS)]
            list(pool.map(lambda lane: visit(*lane), lanes))
            flush()

        local = threading.local()

        def visitor_session():
            if not hasattr(local, "session"):
                local.session = runtime.sessions()
                opened.append(local.session)
            return local.session

        def visit(lane, seed):
            simulated, chooser = FrozenClock(start), random.Random(seed)
            for at, listener, track_id, user_agent in lane:
                show(simulated, chooser, at, listener, track_id, user_agent)

        opened: list = []
        pool = ThreadPoolExecutor(PARALLEL_VISITORS, thread_name_prefix="demo-visitor")
        day = start
        while day < cutoff:
            day_of_history(day, 1.0)
            day += timedelta(days=1)
        for listener_id, _ in key_listeners[:-1]:
            for track_id in rng.sample(tracks, k=min(3, len(tracks))):
                at = start + timedelta(days=rng.randrange(28), hours=12)
                session.add(Download(track_id=track_id, listener_id=listener_id, via="key", granted_at=at,
                                     completed_at=at))
        session.commit()

        # Payout methods: manual (confirmed by finance) for most, SEPA for euro artists, none for one payee.
        finance = users["finance@ninety.test"]
        payees = list(session.scalars(select(Payee).where(Payee.id.in_(state.get("payees") or [])).order_by(Payee.id)))
        for index, payee in enumerate(payees):
            if index == len(payees) - 1 and len(payees) > 2:
                break  # left without a method: the batch says why
            if cfg.currency == "EUR":
                method = add_sepa_method(session, payee.id, holder_name=payee.display_name,
                                         iban="DE89370400440532013000", bic=None, clock=clock)
                confirm_method(session, method.id, clock=clock)  # as if each payee followed their email link
            else:
                method = add_manual_method(session, payee.id, holder_name=payee.display_name,
                                           instructions=f"Bank transfer to {payee.display_name}'s account on file",
                                           clock=clock)
                confirm_method(session, method.id, clock=clock)
                verify_method(session, method.id, clock=clock, verifier_id=finance.id)

        close_period(session, runtime.redis, last, clock=clock, closed_by=finance.id)
        batch = draft_batch(session, last, currency=cfg.currency, drafted_by=finance.id, clock=clock,
                            threshold_micros=cfg.threshold_micros(cfg.currency))
        approve_batch(session, batch.id, approved_by=users["approver@ninety.test"].id, clock=clock)
        execute_batch(session, batch.id, rails=default_rails(None), clock=clock)
        state["payout_batch_id"] = batch.id
        state["closed_period"] = last

        # This month so far: earnings up to now, so the chart and the live balance move.
        day = bounds(period_of(now))[0]
        while day + timedelta(days=1) <= now:
            day_of_history(day, 0.5)
            day += timedelta(days=1)
        pool.shutdown()
        for visitor_db in opened:
            visitor_db.close()
        session.commit()
    finally:
        session.close()
