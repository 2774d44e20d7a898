"""Royalties fixtures: a small world of artists, tracks, split sheets, ad revenue in the books, downloads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from core.clock import FrozenClock
from core.db import transaction
from core.money import allocate, share_ceil
from tests.payments.conftest import connect_standin, stripe_client  # noqa: F401 - fixtures

OCT = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass
class World:
    app: object
    clock: FrozenClock
    funded: set = field(default_factory=set)
    users: dict = field(default_factory=dict)

    @property
    def sessions(self):
        return self.app.extensions["ninety"].sessions

    @property
    def redis(self):
        return self.app.extensions["ninety"].redis

    def session(self):
        return self.sessions()

    def unit(self):
        """A session whose work is committed when the block ends (services never commit; the caller does)."""
        return transaction(self.sessions)

    # catalog ---------------------------------------------------------------------------------------
    def artist(self, name: str, *, currency: str = "USD", tracks: int = 1, make_user=None):
        """An artist (with its payee and a member user) and a published-looking release of `tracks` tracks."""
        from catalog import services as catalog
        from core.users import create_user

        with self.session() as s:
            user = create_user(s, email=f"{name.lower().replace(' ', '')}-{uuid.uuid4().hex[:6]}@artists.test",
                               password="correct horse battery", display_name=name, roles=["artist"])
            artist = catalog.create_artist(s, user=user, name=name, currency=currency)
            release = catalog.create_release(s, artist.id, title=f"{name} LP")
            track_ids = [catalog.add_track(s, release, title=f"{name} song {i + 1}", clock=self.clock).id
                         for i in range(tracks)]
            payee = catalog.artist_payee(s, artist.id)
            s.commit()
            s.expunge(user)
            return {"user": user, "artist_id": artist.id, "payee_id": payee.id, "release_id": release.id,
                    "tracks": track_ids}

    def split(self, track_id: int, shares: list[tuple[int, int]]):
        from catalog import services as catalog

        with self.unit() as s:
            catalog.set_split_sheet(s, catalog.get_track(s, track_id), shares, clock=self.clock)

    def collaborator(self, email: str, artist_id: int) -> int:
        from catalog import services as catalog

        with self.unit() as s:
            return catalog.invite_payee(s, artist_id, email=email).id

    def download(self, listener_id: str, track_id: int, at: datetime, via: str = "key"):
        from catalog.models import Download

        with self.session() as s:
            s.add(Download(track_id=track_id, listener_id=listener_id, via=via, granted_at=at, completed_at=at))
            s.commit()

    # the books: what the flush posts (royalties.accrual's policy), written directly --------------------------
    def _fund(self, s, advertiser: int, currency: str, at: datetime):
        from ledger import services as ledger
        from ledger.accounts import STRIPE, advertiser_prepaid

        if (advertiser, currency) in self.funded:
            return
        amount = 10**12
        ledger.post(s, ledger.Entry(f"fund:{advertiser}:{currency}", datetime(2026, 1, 1, tzinfo=UTC),
                                    "funding", [ledger.Posting(STRIPE, "debit", amount, currency),
                                                ledger.Posting(advertiser_prepaid(advertiser), "credit", amount,
                                                               currency)],
                                    metadata={"event": "advertiser_funding"}))
        self.funded.add((advertiser, currency))

    def gate_revenue(self, track_id: int, price_micros: int, at: datetime, *, currency: str = "USD",
                     advertiser: int = 1) -> int:
        """One flush batch of gate impressions for one track: Dr prepaid; Cr payees 90% by split; Cr income:ads."""
        from catalog.services import split_sheet_at
        from ledger import services as ledger
        from ledger.accounts import INCOME_ADS, advertiser_prepaid, payee_payable

        with self.unit() as s:
            self._fund(s, advertiser, currency, at)
            artists = share_ceil(price_micros, 9, 10)
            sheet = split_sheet_at(s, track_id, at)
            parts = allocate(artists, [bp for _, bp in sheet])
            postings = [ledger.Posting(advertiser_prepaid(advertiser), "debit", price_micros, currency)]
            postings += [ledger.Posting(payee_payable(p), "credit", amount, currency, ref=f"track:{track_id}")
                         for (p, _), amount in zip(sheet, parts, strict=True) if amount]
            if price_micros - artists:
                postings.append(ledger.Posting(INCOME_ADS, "credit", price_micros - artists, currency))
            ledger.post(s, ledger.Entry(f"flush:{uuid.uuid4().hex}", at, "ad flush", postings,
                                        metadata={"event": "ad_flush"}))
            return artists

    def key_revenue(self, listener_id: str, price_micros: int, at: datetime, *, currency: str = "USD",
                    advertiser: int = 1) -> int:
        """Key-mode impressions of one listener: 90% (rounded up) to the month's pool, keyed by listener."""
        from ledger import services as ledger
        from ledger.accounts import INCOME_ADS, advertiser_prepaid, listener_pool

        with self.unit() as s:
            self._fund(s, advertiser, currency, at)
            pooled = share_ceil(price_micros, 9, 10)
            period = f"{at.year:04d}-{at.month:02d}"
            postings = [ledger.Posting(advertiser_prepaid(advertiser), "debit", price_micros, currency),
                        ledger.Posting(listener_pool(period), "credit", pooled, currency, ref=f"listener:{listener_id}")]
            if price_micros - pooled:
                postings.append(ledger.Posting(INCOME_ADS, "credit", price_micros - pooled, currency))
            ledger.post(s, ledger.Entry(f"flush:{uuid.uuid4().hex}", at, "ad flush (key)", postings,
                                        metadata={"event": "ad_flush"}))
            return pooled

    def balance(self, code: str, currency: str = "USD", as_of=None) -> int:
        from ledger import services as ledger

        with self.session() as s:
            return ledger.balance(s, code, currency, as_of=as_of)

    def finance(self, name: str):
        from core.users import create_user

        if name not in self.users:
            with self.session() as s:
                user = create_user(s, email=f"{name}-{uuid.uuid4().hex[:6]}@finance.test",
                                   password="correct horse battery", display_name=name, roles=["finance"])
                s.commit()
                s.expunge(user)
                self.users[name] = user
        return self.users[name]


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def rapp(make_app, clock, connect_standin):  # noqa: F811
    return make_app(clock=clock, stripe_api_base=connect_standin.url)


@pytest.fixture
def world(rapp, clock):
    return World(rapp, clock)
