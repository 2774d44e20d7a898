"""Budgets in Redis, seeded from PostgreSQL (impression rows) and the ledger, and reconciled against them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adserver import keys
from adserver.models import Advertiser, Impression

DAY_KEY_TTL_S = 3 * 86400


def prepaid_balance(session: Session, advertiser_id: int, currency: str) -> int:
    from ledger.accounts import advertiser_prepaid
    from ledger.services import balance

    return balance(session, advertiser_prepaid(advertiser_id), currency)


def flushed_spend(session: Session, *, campaign_id: int | None = None, advertiser_id: int | None = None,
                  since: datetime | None = None) -> int:
    query = select(func.coalesce(func.sum(Impression.price_micros), 0))
    if campaign_id is not None:
        query = query.where(Impression.campaign_id == campaign_id)
    if advertiser_id is not None:
        query = query.where(Impression.advertiser_id == advertiser_id)
    if since is not None:
        query = query.where(Impression.at >= since)
    return int(session.scalar(query))


def seed_budgets(redis, session: Session, campaigns: Iterable, *, now: datetime | None = None) -> None:
    """Create any missing budget key from the durable records; never overwrite a live one (SET NX)."""
    campaigns = list(campaigns)
    if not campaigns:
        return
    now = now or datetime.now(UTC)
    today = keys.day(now)
    names = []
    for c in campaigns:
        names += [keys.campaign_spent(c.id), keys.campaign_day(c.id, today)]
    advertisers = {(c.advertiser_id, c.currency) for c in campaigns}
    names += [keys.advertiser_avail(a) for a, _ in advertisers]
    values = dict(zip(names, redis.mget(names), strict=True))
    if all(v is not None for v in values.values()):
        return
    midnight = datetime.combine(now.date(), time(0), tzinfo=UTC)
    pipe = redis.pipeline()
    for c in campaigns:
        if values[keys.campaign_spent(c.id)] is None:
            pipe.set(keys.campaign_spent(c.id), flushed_spend(session, campaign_id=c.id), nx=True)
        if values[keys.campaign_day(c.id, today)] is None:
            pipe.set(keys.campaign_day(c.id, today), flushed_spend(session, campaign_id=c.id, since=midnight),
                     nx=True, ex=DAY_KEY_TTL_S)
    for aid, currency in advertisers:
        if values[keys.advertiser_avail(aid)] is None:
            flushed = flushed_spend(session, advertiser_id=aid)
            pipe.set(keys.advertiser_charged(aid), flushed, nx=True)
            pipe.set(keys.advertiser_avail(aid), prepaid_balance(session, aid, currency), nx=True)
    pipe.execute()


def credit_available(redis, session: Session, advertiser_id: int, amount_micros: int, currency: str, *,
                     entry_id: int) -> None:
    """After a funding entry: raise the spendable balance once per entry (a replayed funding posts the same
    entry id and changes nothing), seeding it from the ledger if it is missing."""
    marker = keys.advertiser_funded(advertiser_id, entry_id)
    if redis.exists(keys.advertiser_avail(advertiser_id)):
        if redis.set(marker, 1, nx=True):
            redis.incrby(keys.advertiser_avail(advertiser_id), amount_micros)
        return
    redis.set(marker, 1)
    redis.set(keys.advertiser_charged(advertiser_id), flushed_spend(session, advertiser_id=advertiser_id), nx=True)
    redis.set(keys.advertiser_avail(advertiser_id), prepaid_balance(session, advertiser_id, currency), nx=True)


@dataclass
class Reconciliation:
    advertiser_id: int
    currency: str
    ledger_balance_micros: int
    charged_micros: int
    flushed_micros: int
    expected_avail_micros: int
    redis_avail_micros: int | None

    @property
    def pending_micros(self) -> int:
        return self.charged_micros - self.flushed_micros

    @property
    def matches(self) -> bool:
        return self.redis_avail_micros == self.expected_avail_micros


def reconcile(redis, session: Session, *, fix: bool = False) -> list[Reconciliation]:
    """Compare each advertiser's spendable balance in Redis with ledger balance less unflushed charges.

    Run it with the flush caught up for an exact answer; `fix` rewrites Redis to the expected value.
    """
    rows = []
    for adv in session.scalars(select(Advertiser).order_by(Advertiser.id)):
        ledger_balance = prepaid_balance(session, adv.id, adv.currency)
        flushed = flushed_spend(session, advertiser_id=adv.id)
        charged_raw, avail_raw = redis.mget(keys.advertiser_charged(adv.id), keys.advertiser_avail(adv.id))
        charged = int(charged_raw) if charged_raw is not None else flushed
        expected = ledger_balance - (charged - flushed)
        row = Reconciliation(adv.id, adv.currency, ledger_balance, charged, flushed, expected,
                             int(avail_raw) if avail_raw is not None else None)
        rows.append(row)
        if fix and not row.matches:
            redis.set(keys.advertiser_charged(adv.id), charged)
            redis.set(keys.advertiser_avail(adv.id), expected)
    return rows


def day_start(at: datetime) -> datetime:
    return datetime.combine(at.date(), time(0), tzinfo=UTC)


def seconds_into_day(at: datetime) -> float:
    return (at - day_start(at)) / timedelta(seconds=1)
