"""The flush's money policy: which journal entries pay for a set of counted impressions.

One journal entry per batch, per track and month (or, for key mode, per month). Each entry debits every
advertiser whose impressions it covers; credits each payee of the track its share of 90% by the split sheet
in force when the impressions happened (the artist side rounded up with `share_ceil`, then split with
`allocate`), or the listener pool for key-mode impressions; and credits `income:ads` the rest. An entry's
idempotency key is derived from its decision ids.

Storing impressions and posting these entries is royalties.flush; the stream consumer is royalties.worker;
the stream's record is adserver.stream.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from adserver.stream import StreamImpression
from catalog.services import split_sheet_at, split_sheets_at
from core.money import allocate, share_ceil
from ledger.accounts import (
    INCOME_ADS,
    INCOME_UNATTRIBUTED,
    advertiser_prepaid,
    listener_pool,
    payee_held,
    payee_payable,
)
from ledger.services import Entry, Posting
from rights.escrow import routes_for


def period_of(at: datetime) -> str:
    return _period(at.year, at.month)


@functools.lru_cache(maxsize=256)
def _period(year: int, month: int) -> str:
    return datetime(year, month, 1).strftime("%Y-%m")


def entry_key(decision_ids: Iterable[str]) -> str:
    digest = hashlib.sha256("".join(sorted(decision_ids)).encode()).hexdigest()[:40]
    return f"ad_flush:{digest}"


def _debits(group: list[StreamImpression], currency: str) -> list[Posting]:
    by_advertiser: dict[int, int] = defaultdict(int)
    for imp in group:
        by_advertiser[imp.advertiser_id] += imp.price_micros
    return [Posting(advertiser_prepaid(a), "debit", amount, currency, ref=f"advertiser:{a}")
            for a, amount in sorted(by_advertiser.items())]


def _account_for(held_tracks, track_id):
    """The account a payee's share is credited to: the case's route (rights.escrow) while a takedown case holds
    the track's earnings, or the payable. A plain set of track ids means "held" (the shape tests pass)."""
    route = held_tracks.get(track_id) if isinstance(held_tracks, dict) else None
    if route is not None:
        return route.account
    return payee_held if track_id in held_tracks else payee_payable


def _case_of(held_tracks, track_id):
    route = held_tracks.get(track_id) if isinstance(held_tracks, dict) else None
    return route.case_id if route is not None else None


def build_entries(groups: dict[tuple, list[StreamImpression]], sheets: dict[tuple, list[tuple[int, int]]],
                  held_tracks: set[int] | dict) -> list[tuple[Entry, list[StreamImpression]]]:
    """Journal entries for grouped impressions: keys are (currency, period, kind, ident, sheet_key)."""
    entries = []
    for group_key, group in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        currency, period, kind, ident, _ = group_key
        total = sum(i.price_micros for i in group)
        artist_side = share_ceil(total, 9, 10)
        credits: list[Posting] = []
        metadata = {"event": "ad_flush", "impressions": len(group), "period": period}
        if kind == "track" and sheets.get(group_key):
            sheet = sheets[group_key]
            account = _account_for(held_tracks, ident)
            if ident in held_tracks:
                metadata["held_for_case"] = _case_of(held_tracks, ident)
            for (payee_id, _bp), amount in zip(sheet, allocate(artist_side, [bp for _, bp in sheet]), strict=True):
                if amount:
                    credits.append(Posting(account(payee_id), "credit", amount, currency, ref=f"track:{ident}"))
            metadata["track_id"] = ident
            description = f"Ad revenue for track {ident} ({len(group)} impressions)"
        elif kind == "pool":
            by_listener: dict[str, int] = defaultdict(int)
            for imp in group:
                by_listener[imp.listener_id] += imp.price_micros
            listeners = sorted(by_listener)
            parts = allocate(artist_side, [by_listener[lid] for lid in listeners])
            for lid, amount in zip(listeners, parts, strict=True):
                if amount:
                    credits.append(Posting(listener_pool(period), "credit", amount, currency, ref=f"listener:{lid}"))
            description = f"Key-mode ad revenue for the {period} listener pool ({len(group)} impressions)"
        else:
            credits.append(Posting(INCOME_UNATTRIBUTED, "credit", artist_side, currency,
                                   ref=f"track:{ident}" if ident is not None else None))
            description = f"Ad revenue no track can be credited with ({len(group)} impressions)"
        if total - artist_side:
            credits.append(Posting(INCOME_ADS, "credit", total - artist_side, currency))
        entry = Entry(idempotency_key=entry_key(i.decision_id for i in group),
                      effective_at=max(i.at for i in group), description=description,
                      postings=_debits(group, currency) + credits, metadata=metadata)
        entries.append((entry, group))
    return entries


def group_impressions(session: Session, impressions: list[StreamImpression]):
    """Group impressions by what one entry covers, resolving split sheets at the impressions' times."""
    groups: dict[tuple, list[StreamImpression]] = defaultdict(list)
    sheets: dict[tuple, list[tuple[int, int]]] = {}
    tracked = [i for i in impressions if i.mode != "key" and i.track_id is not None]
    track_ids = {i.track_id for i in tracked}
    if tracked:
        first, last = min(i.at for i in tracked), max(i.at for i in tracked)
        at_first = split_sheets_at(session, track_ids, first)
        at_last = at_first if first == last else split_sheets_at(session, track_ids, last)
    else:
        at_first = at_last = {}
    per_time: dict[tuple[int, datetime], list[tuple[int, int]]] = {}
    for imp in impressions:
        period = period_of(imp.at)
        if imp.mode == "key":
            groups[(imp.currency, period, "pool", None, None)].append(imp)
            continue
        if imp.track_id is None or imp.track_id not in at_last:
            groups[(imp.currency, period, "unattributed", imp.track_id, None)].append(imp)
            continue
        sheet = at_last[imp.track_id]
        if at_first.get(imp.track_id) != sheet:  # the sheet changed inside this batch: look up this moment's
            cache_key = (imp.track_id, imp.at)
            if cache_key not in per_time:
                per_time[cache_key] = split_sheet_at(session, imp.track_id, imp.at)
            sheet = per_time[cache_key]
        sheet_key = tuple(sheet)
        key = (imp.currency, period, "track", imp.track_id, sheet_key)
        groups[key].append(imp)
        sheets[key] = list(sheet)
    return groups, sheets, track_ids


def held_tracks(session: Session, track_ids: set[int]) -> dict:
    """Tracks whose new earnings do not go to their payees' payable, with the takedown case's route (held for
    the case while it is open, the claimant's once upheld): rights.escrow owns the rule."""
    return routes_for(session, track_ids)


def entries_for(session: Session, impressions: list[StreamImpression]) -> list[tuple[Entry, list[StreamImpression]]]:
    """The entries paying for these impressions, each with the impressions it covers."""
    groups, sheets, track_ids = group_impressions(session, impressions)
    return build_entries(groups, sheets, held_tracks(session, track_ids))

