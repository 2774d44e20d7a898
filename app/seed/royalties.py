"""Demo royalties: a month of ad history through the real flush (gate and key mode, with downloads), that
month closed, payout methods, and a paid batch (drafted by finance@, approved by approver@); plus this
month's earnings so far, so the dashboard's chart and live balance have something to show."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

ORDER = 40
GATE_PRICE_MICROS = 4_000   # a 4.00 CPM
KEY_PRICE_MICROS = 2_000


def seed(runtime, state: dict) -> None:
    from sqlalchemy import select

    from adserver.models import Campaign, Creative
    from catalog.models import Download, Payee
    from core.users import User
    from payments.services import add_manual_method, add_sepa_method, confirm_method, verify_method
    from royalties.accrual import StreamImpression, flush_impressions
    from royalties.periods import bounds, period_of, previous
    from royalties.rails import default_rails
    from royalties.services import approve_batch, close_period, draft_batch, execute_batch

    tracks = state.get("tracks") or []
    if not tracks or not state.get("advertiser_id"):
        return
    clock, cfg = runtime.clock, runtime.config
    now = clock.now()
    last = previous(period_of(now))
    start, cutoff = bounds(last)
    rng = random.Random(90)
    session = runtime.sessions()
    try:
        users = {u.email: u for u in session.scalars(select(User))}
        campaign = session.scalar(select(Campaign).where(Campaign.advertiser_id == state["advertiser_id"])
                                  .order_by(Campaign.id))
        creative = session.scalar(select(Creative).where(Creative.campaign_id == campaign.id))
        listeners = [f"u{users['listener@ninety.test'].id}"] + [f"a{rng.getrandbits(48):012x}" for _ in range(5)]
        popular = tracks[: max(1, len(tracks) // 2)]

        def impression(at, track_id=None, listener=None):
            key = track_id is None
            return StreamImpression(
                decision_id=uuid.uuid4().hex, campaign_id=campaign.id, advertiser_id=state["advertiser_id"],
                creative_id=creative.id, slot="browse" if key else "gate", track_id=track_id,
                listener_id=listener or f"a{rng.getrandbits(48):012x}", mode="key" if key else "gate",
                price_micros=KEY_PRICE_MICROS if key else GATE_PRICE_MICROS, currency=cfg.currency, at=at)

        def day_of_history(day_start, scale):
            batch = []
            for track_id in tracks:
                weight = 3 if track_id in popular else 1
                for _ in range(int(rng.randint(40, 110) * weight * scale)):
                    batch.append(impression(day_start + timedelta(minutes=rng.randrange(24 * 60)), track_id))
            for listener in listeners[:-1]:  # the last key-mode listener never downloads: unattributed
                for _ in range(int(rng.randint(5, 25) * scale)):
                    batch.append(impression(day_start + timedelta(minutes=rng.randrange(24 * 60)), None, listener))
            for _ in range(int(10 * scale)):
                batch.append(impression(day_start + timedelta(minutes=rng.randrange(24 * 60)), None, listeners[-1]))
            flush_impressions(session, batch)

        day = start
        while day < cutoff:
            day_of_history(day, 1.0)
            day += timedelta(days=1)
        for listener in listeners[:-1]:
            for track_id in rng.sample(tracks, k=min(3, len(tracks))):
                at = start + timedelta(days=rng.randrange(28), hours=12)
                session.add(Download(track_id=track_id, listener_id=listener, via="key", granted_at=at,
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
        session.commit()
    finally:
        session.close()
