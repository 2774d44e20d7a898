"""Budgets in Redis, seeded from PostgreSQL (impression rows) and the ledger, and reconciled against them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adserver import keys, stream
from adserver.models import Advertiser, Campaign, Impression
from core.redis import mget

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
        names += [keys.campaign_spent(c.id, advertiser=c.advertiser_id),
                  keys.campaign_day(c.id, today, advertiser=c.advertiser_id)]
    advertisers = {(c.advertiser_id, c.currency) for c in campaigns}
    names += [keys.advertiser_avail(a) for a, _ in advertisers]
    values = dict(zip(names, mget(redis, names), strict=True))
    if all(v is not None for v in values.values()):
        return
    midnight = datetime.combine(now.date(), time(0), tzinfo=UTC)
    pipe = redis.pipeline(transaction=False)
    for c in campaigns:
        spent_key = keys.campaign_spent(c.id, advertiser=c.advertiser_id)
        day_key = keys.campaign_day(c.id, today, advertiser=c.advertiser_id)
        if values[spent_key] is None:
            pipe.set(spent_key, flushed_spend(session, campaign_id=c.id), nx=True)
        if values[day_key] is None:
            pipe.set(day_key, flushed_spend(session, campaign_id=c.id, since=midnight), nx=True, ex=DAY_KEY_TTL_S)
    for aid, currency in advertisers:
        if values[keys.advertiser_avail(aid)] is None:
            flushed = flushed_spend(session, advertiser_id=aid)
            pipe.set(keys.advertiser_charged(aid), flushed, nx=True)
            pipe.set(keys.advertiser_avail(aid), prepaid_balance(session, aid, currency), nx=True)
    pipe.execute()


def funding_seed(session: Session, advertiser_id: int, currency: str) -> tuple[int, int]:
    """(flushed spend, ledger balance) to seed an advertiser's budget keys with, read inside the transaction
    that posts a funding (so it includes it), for `credit_available` to use once that transaction commits."""
    return flushed_spend(session, advertiser_id=advertiser_id), prepaid_balance(session, advertiser_id, currency)


def credit_available(redis, session: Session | None, advertiser_id: int, amount_micros: int, currency: str, *,
                     entry_id: int, seed: tuple[int, int] | None = None) -> None:
    """After a funding entry: raise the spendable balance once per entry (a replayed funding posts the same
    entry id and changes nothing), seeding it from the ledger (or the given `funding_seed`) if it is missing."""
    marker = keys.advertiser_funded(advertiser_id, entry_id)
    if redis.exists(keys.advertiser_avail(advertiser_id)):
        if redis.set(marker, 1, nx=True):
            redis.incrby(keys.advertiser_avail(advertiser_id), amount_micros)
        return
    charged, avail = seed if seed is not None else funding_seed(session, advertiser_id, currency)
    redis.set(marker, 1)
    redis.set(keys.advertiser_charged(advertiser_id), charged, nx=True)
    redis.set(keys.advertiser_avail(advertiser_id), avail, nx=True)


@dataclass
class Reconciliation:
    """One advertiser's budgets in Redis against the durable records, and every impossible state found.

    `charged` is what Redis ever charged, `flushed` what the flush stored as impression rows, `unflushed` what
    the impression stream still holds for the flush, `parked` what stored impressions owe that the ledger
    refused to debit (parked entries, and those written off). Sound state: charged = flushed + unflushed, and
    spendable (`avail`) = ledger balance - unflushed - parked, never above the ledger balance, never negative."""

    advertiser_id: int
    currency: str
    ledger_balance_micros: int
    charged_micros: int | None
    flushed_micros: int
    unflushed_micros: int
    redis_avail_micros: int | None
    parked_micros: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def pending_micros(self) -> int:
        """Charged in Redis and not in the impression rows yet (as Redis tells it)."""
        return (self.charged_micros if self.charged_micros is not None else self.flushed_micros) - self.flushed_micros

    @property
    def expected_avail_micros(self) -> int:
        return self.ledger_balance_micros - self.unflushed_micros - self.parked_micros

    @property
    def seeded(self) -> bool:
        return self.redis_avail_micros is not None or self.charged_micros is not None

    @property
    def matches(self) -> bool:
        return not self.problems


def _check(row: Reconciliation, campaigns: list[tuple[int, int | None, int, int]]) -> None:
    """Name every impossible state of one advertiser (campaigns: id, Redis spent, flushed, unflushed)."""
    say = row.problems.append
    if row.charged_micros is None and row.redis_avail_micros is not None:
        say("Redis has a spendable balance but no charged total")
    if row.redis_avail_micros is None and row.charged_micros is not None:
        say("Redis has a charged total but no spendable balance")
    if not row.seeded:
        if row.unflushed_micros:
            say(f"not seeded in Redis while the stream holds {row.unflushed_micros} unflushed")
        return
    if row.charged_micros is not None:
        if row.pending_micros < 0:
            say(f"pending {row.pending_micros} < 0: the impression rows hold more than Redis ever charged "
                "(spend written to the books without charging Redis)")
        if row.pending_micros != row.unflushed_micros:
            say(f"charged but unflushed {row.pending_micros} != {row.unflushed_micros} in the stream")
    if row.redis_avail_micros is not None:
        if row.redis_avail_micros > row.ledger_balance_micros:
            say(f"spendable {row.redis_avail_micros} above the ledger balance {row.ledger_balance_micros}")
        if row.redis_avail_micros < 0:
            say(f"spendable {row.redis_avail_micros} < 0")
        if row.redis_avail_micros != row.expected_avail_micros:
            say(f"spendable {row.redis_avail_micros} != ledger {row.ledger_balance_micros} less unflushed and "
                f"parked {row.unflushed_micros + row.parked_micros} = {row.expected_avail_micros}")
    for campaign_id, spent, flushed, unflushed in campaigns:
        if spent is not None and spent < flushed:
            say(f"campaign {campaign_id}: Redis spent {spent} below its flushed spend {flushed}")
        elif spent is not None and spent != flushed + unflushed:
            say(f"campaign {campaign_id}: Redis spent {spent} != flushed {flushed} + unflushed {unflushed}")


def unflushed_in_stream(redis) -> tuple[dict[int, int], dict[int, int]]:
    """What the impression stream (every shard) still holds for the flush, in micros: (by advertiser, by
    campaign)."""
    by_advertiser: dict[int, int] = defaultdict(int)
    by_campaign: dict[int, int] = defaultdict(int)
    for _, fields in stream.entries(redis):
        try:
            price = int(fields[b"price_micros"])
            by_advertiser[int(fields[b"advertiser_id"])] += price
            by_campaign[int(fields[b"campaign_id"])] += price
        except (KeyError, ValueError):
            continue  # an unparseable entry: the flush dead-letters it (and reconcile sees the gap)
    return dict(by_advertiser), dict(by_campaign)


def reconcile(redis, session: Session, *, fix: bool = False,
              parked_micros: Mapping[int, int] | None = None) -> list[Reconciliation]:
    """Check each advertiser's budgets in Redis against the ledger, the impression rows and the stream, and
    name every impossible state (see `Reconciliation`); `parked_micros`: per advertiser, what stored
    impressions owe that the ledger refused to debit (the caller reads it from the flush's suspense). Run it with the flush caught up: a batch between commit and acknowledgement
    counts twice. `fix` rewrites Redis to what the durable records and the stream imply."""
    parked_micros = parked_micros or {}
    stream_by_advertiser, stream_by_campaign = unflushed_in_stream(redis)
    rows = []
    for adv in session.scalars(select(Advertiser).order_by(Advertiser.id)):
        ledger_balance = prepaid_balance(session, adv.id, adv.currency)
        flushed = flushed_spend(session, advertiser_id=adv.id)
        charged_raw, avail_raw = redis.mget(keys.advertiser_charged(adv.id), keys.advertiser_avail(adv.id))
        row = Reconciliation(adv.id, adv.currency, ledger_balance,
                             int(charged_raw) if charged_raw is not None else None, flushed,
                             stream_by_advertiser.get(adv.id, 0),
                             int(avail_raw) if avail_raw is not None else None,
                             parked_micros=int(parked_micros.get(adv.id, 0)))
        campaign_ids = list(session.scalars(select(Campaign.id).where(Campaign.advertiser_id == adv.id)
                                            .order_by(Campaign.id)))
        spent_raw = mget(redis, [keys.campaign_spent(c, advertiser=adv.id) for c in campaign_ids])
        campaigns = [(cid, int(raw) if raw is not None else None, flushed_spend(session, campaign_id=cid),
                      stream_by_campaign.get(cid, 0)) for cid, raw in zip(campaign_ids, spent_raw, strict=True)]
        _check(row, campaigns)
        rows.append(row)
        if fix and row.problems and row.seeded:
            pipe = redis.pipeline(transaction=False)
            pipe.set(keys.advertiser_charged(adv.id), flushed + row.unflushed_micros)
            pipe.set(keys.advertiser_avail(adv.id), row.expected_avail_micros)
            for cid, spent, c_flushed, c_unflushed in campaigns:
                if spent is not None and spent < c_flushed + c_unflushed:
                    pipe.set(keys.campaign_spent(cid, advertiser=adv.id), c_flushed + c_unflushed)
            pipe.execute()
    return rows


def day_start(at: datetime) -> datetime:
    return datetime.combine(at.date(), time(0), tzinfo=UTC)


def seconds_into_day(at: datetime) -> float:
    return (at - day_start(at)) / timedelta(seconds=1)
