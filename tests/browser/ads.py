"""An ad for a browser test to see: a funded advertiser's live campaign with one approved creative."""

from __future__ import annotations

from datetime import timedelta


def approved_creative(session, runtime, adv_user_id: int, *, advertiser: str, campaign: str, slots: tuple[str, ...],
                      kind: str, name: str, idempotency_key: str, **media) -> int:
    """Fund `advertiser` (10 USD, `adv_user_id` its member), start `campaign` on `slots` an hour ago and approve
    one `kind` creative with `media` (image/alt_text or audio); the caller commits. The creative's id."""
    from adserver import services as ads

    made = ads.create_advertiser(session, name=advertiser, currency="USD", member_user_ids=[adv_user_id])
    ads.fund(session, runtime.redis, advertiser_id=made.id, amount_micros=10_000_000, currency="USD",
             clock=runtime.clock, idempotency_key=idempotency_key)
    live = ads.create_campaign(session, runtime.redis, made.id, ads.CampaignInput(
        name=campaign, starts_at=runtime.clock.now() - timedelta(hours=1), ends_at=None,
        total_budget_micros=5_000_000, daily_budget_micros=5_000_000, bid_cpm_micros=2_000_000, pacing="asap",
        slots=slots), floor_cpm_micros=500_000)
    creative = ads.create_creative(session, runtime.redis, live.id, kind=kind, name=name,
                                   click_url="https://example.com/", media_root=runtime.config.media_path, **media)
    ads.review_creative(session, runtime.redis, creative.id, approve=True, reviewer_id=adv_user_id,
                        clock=runtime.clock)
    return creative.id
