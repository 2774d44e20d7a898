"""Suspense: flush entries the ledger refused, parked with their reason, and how finance settles them.

The flush (royalties.flush) parks an entry the ledger refuses instead of stopping: the parked record keeps
the entry exactly as it was built (idempotency key, date, postings), which advertiser and campaigns it
debits, how much, which impressions it covers and why it was refused. Its impression rows are stored with no
entry. Finance settles each parked entry once:

- retry: post the entry as built, with its original idempotency key (after the advertiser has topped up);
  the impressions then point at it. Still refused: nothing changes, and finance is told why.
- write off: the platform absorbs it. Dr `expenses:bad-debt` for what the entry owed payees (or the listener
  pool, or income:unattributed), Cr each of them as the entry would have; the platform's own 10% is not
  booked (it was never earned). Artists are paid their 90% because their music was heard: the risk of an
  advertiser who cannot pay is the platform's, not the artist's (docs/decisions.md "Refused flush entries").

A month cannot close while one of its entries is parked (royalties.close). Services here never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.clock import Clock
from ledger.accounts import BAD_DEBT, INCOME_ADS
from ledger.errors import LedgerError
from ledger.services import Entry, Posting, post
from royalties.errors import ParkedEntryNotFound, ParkedEntrySettled, ParkedEntryStillRefused
from royalties.models import ParkedEntry

REASON_LIMIT = 2000


def entry_to_json(entry: Entry) -> dict:
    return {"idempotency_key": entry.idempotency_key, "effective_at": entry.effective_at.isoformat(),
            "description": entry.description, "metadata": entry.metadata or {},
            "postings": [[p.account, p.side, p.amount_micros, p.currency, p.ref] for p in entry.postings]}


def entry_from_json(data: dict) -> Entry:
    return Entry(idempotency_key=data["idempotency_key"], effective_at=datetime.fromisoformat(data["effective_at"]),
                 description=data["description"], metadata=data["metadata"],
                 postings=[Posting(account, side, amount, currency, ref)
                           for account, side, amount, currency, ref in data["postings"]])


def park(session: Session, entry: Entry, impressions: list, refusal: LedgerError) -> ParkedEntry:
    """Record a refused flush entry (which debits one advertiser) and the impressions it covers."""
    debits = [p for p in entry.postings if p.side == "debit"]
    advertisers = {imp.advertiser_id for imp in impressions}
    if len(advertisers) != 1 or len(debits) != 1:  # pragma: no cover - royalties.flush builds them so
        raise ValueError("a parked entry debits exactly one advertiser")
    parked = ParkedEntry(
        idempotency_key=entry.idempotency_key, advertiser_id=advertisers.pop(),
        campaign_ids=sorted({imp.campaign_id for imp in impressions}), currency=debits[0].currency,
        amount_micros=debits[0].amount_micros, period=(entry.metadata or {}).get("period")
        or entry.effective_at.strftime("%Y-%m"), impressions=len(impressions),
        decision_ids=[uuid.UUID(hex=imp.decision_id) for imp in impressions], entry=entry_to_json(entry),
        reason_code=refusal.code, reason=refusal.message[:REASON_LIMIT], status="parked")
    session.add(parked)
    session.flush()
    return parked


def parked_entries(session: Session, *, status: str | None = "parked", limit: int = 200) -> list[ParkedEntry]:
    query = select(ParkedEntry).order_by(ParkedEntry.id).limit(limit)
    if status is not None:
        query = query.where(ParkedEntry.status == status)
    return list(session.scalars(query))


def unsettled(session: Session, *, through_period: str) -> dict[str, tuple[int, int]]:
    """Per currency, (count, micros) of parked entries of `through_period` or earlier not settled yet."""
    rows = session.execute(text(
        "SELECT currency, count(*), sum(amount_micros) FROM royalty_parked_entries "
        "WHERE status = 'parked' AND period <= :period GROUP BY currency"), {"period": through_period}).all()
    return {currency: (int(count), int(total)) for currency, count, total in rows}


def _parked(session: Session, parked_id: int) -> ParkedEntry:
    parked = session.get(ParkedEntry, parked_id, with_for_update=True, populate_existing=True)
    if parked is None:
        raise ParkedEntryNotFound(f"There is no parked entry {parked_id}.")
    if parked.status != "parked":
        raise ParkedEntrySettled(f"Parked entry {parked_id} was settled already ({parked.status.replace('_', ' ')}).",
                                 status_now=parked.status)
    return parked


def _settle(session: Session, parked: ParkedEntry, status: str, entry_id: int, *, settled_by: int | None,
            clock: Clock) -> ParkedEntry:
    parked.status = status
    parked.settled_entry_id = entry_id
    parked.settled_at = clock.now()
    parked.settled_by = settled_by
    # The impressions are paid for now: they point at the entry that pays for them.
    session.execute(text("UPDATE ad_impressions SET entry_id = :entry WHERE decision_id = ANY(:ids) "
                         "AND entry_id IS NULL"), {"entry": entry_id, "ids": list(parked.decision_ids)})
    session.flush()
    return parked


def retry(session: Session, parked_id: int, *, settled_by: int | None, clock: Clock) -> ParkedEntry:
    """Post a parked entry as it was built, with its original idempotency key (so it is recorded once)."""
    parked = _parked(session, parked_id)
    try:
        entry_id = post(session, entry_from_json(parked.entry))
    except LedgerError as exc:
        raise ParkedEntryStillRefused(
            f"The books still refuse parked entry {parked_id}: {exc.message} It stays parked; top the advertiser "
            "up and retry, or write it off.", reason_code=exc.code) from None
    return _settle(session, parked, "retried", entry_id, settled_by=settled_by, clock=clock)


def write_off_entry(parked: ParkedEntry, at: datetime) -> Entry:
    """The platform absorbs a parked entry: Dr bad debt, Cr what the entry owed everyone but income:ads."""
    original = entry_from_json(parked.entry)
    credits = [p for p in original.postings if p.side == "credit" and p.account != INCOME_ADS]
    total = sum(p.amount_micros for p in credits)
    return Entry(
        idempotency_key=f"ad_write_off:{parked.idempotency_key}", effective_at=at,
        description=f"Write-off of parked ad revenue ({parked.impressions} impressions, advertiser "
                    f"{parked.advertiser_id}): {original.description}"[:500],
        postings=[Posting(BAD_DEBT, "debit", total, parked.currency, ref=f"advertiser:{parked.advertiser_id}"),
                  *credits],
        metadata={**(original.metadata or {}), "event": "ad_flush", "write_off_of": parked.idempotency_key,
                  "parked_id": parked.id})


def write_off(session: Session, parked_id: int, *, settled_by: int | None, clock: Clock) -> ParkedEntry:
    """Settle a parked entry by writing it off (see the module docstring for the entry and why)."""
    parked = _parked(session, parked_id)
    try:
        entry_id = post(session, write_off_entry(parked, clock.now()))
    except LedgerError as exc:
        raise ParkedEntryStillRefused(f"The books refuse the write-off of parked entry {parked_id}: {exc.message}",
                                      reason_code=exc.code) from None
    return _settle(session, parked, "written_off", entry_id, settled_by=settled_by, clock=clock)
