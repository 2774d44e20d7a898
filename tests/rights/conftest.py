"""Rights fixtures: artists with real uploaded audio (content-addressed assets), rights holders, an admin,
earnings through the flush's own policy (royalties.accrual), and notice payloads.

Rights services never commit; the helpers commit their unit of work, as a request or a CLI command would."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest
import soundfile

from core.clock import FrozenClock
from core.db import transaction
from rights.settings import RightsSettings

START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)  # a Monday


def noise(seconds: float = 12.0, seed: int = 1, rate: int = 22050) -> bytes:
    """Band-limited noise with a melody: audio Chromaprint can tell apart (a pure tone it cannot)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    freqs = rng.uniform(200, 1200, size=int(seconds * 4) + 1)
    melody = np.sin(2 * np.pi * freqs[(t * 4).astype(int)] * t)
    samples = (0.25 * melody + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([samples, samples], axis=1), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def payload(tracks, *, title="Song of the Claimant", **overrides) -> dict:
    base = {"claimant": {"name": "Rhea Holder", "email": "rhea@label.test", "address": "1 Label Street, Berlin",
                         "phone": "+49 30 1234"},
            "works": [{"title": title, "description": "An unlicensed copy of our master recording.",
                       "tracks": list(tracks)}],
            "statements": {"good_faith": True, "accurate": True, "authorized": True},
            "signature": "Rhea Holder"}
    base.update(overrides)
    return base


COUNTER = {"name": "Ada Artist", "address": "2 Studio Road, Leeds", "phone": "+44 113 555", "email": "ada@artist.test",
           "statement_mistake": True, "consent_jurisdiction": True, "explanation": "I wrote and recorded it.",
           "signature": "Ada Artist"}


@dataclass
class RightsWorld:
    app: object
    clock: FrozenClock
    settings: RightsSettings
    funded: set = field(default_factory=set)
    seed: int = 0

    @property
    def sessions(self):
        return self.app.extensions["ninety"].sessions

    @property
    def store(self):
        from catalog.storage import MediaStore

        return MediaStore(self.app.extensions["ninety"].config.media_path)

    def unit(self):
        return transaction(self.sessions)

    def user(self, *roles: str, name: str = "someone"):
        from core.users import create_user

        with self.unit() as s:
            user = create_user(s, email=f"{name}-{uuid.uuid4().hex[:8]}@example.test", password="correct horse battery",
                               display_name=name, roles=list(roles))
            s.flush()
            s.expunge(user)
        return user

    def artist(self, name: str = "Ada", *, tracks: int = 1, collaborator: bool = True, audio: list[bytes] | None = None):
        """An artist with a member user, a published release of `tracks` uploaded tracks, and a split sheet of
        the artist (70%) and a collaborator (30%)."""
        from catalog import services as catalog
        from catalog.splits import set_split_sheet
        from catalog.uploads import upload_track
        from core.users import get_user

        user = self.user("artist", name=name)
        with self.unit() as s:
            artist = catalog.create_artist(s, user=get_user(s, user.id), name=f"{name} {uuid.uuid4().hex[:4]}")
            release = catalog.create_release(s, artist.id, title=f"{name} LP")
            track_ids = []
            for i in range(tracks):
                self.seed += 1
                data = audio[i] if audio else noise(seed=self.seed + 1000 * (sum(map(ord, name)) % 97))
                result = upload_track(s, self.store, release, io.BytesIO(data), f"{i + 1:02d} {name} {i}.wav",
                                      clock=self.clock, max_bytes=None, screen=self.screen)
                track_ids.append(result.track.id)
            catalog.publish_release(s, release, clock=self.clock)
            payee = catalog.artist_payee(s, artist.id)
            shares = [(payee.id, 10_000)]
            collaborator_id = None
            if collaborator:
                collaborator_id = catalog.invite_payee(s, artist.id, email=f"co-{uuid.uuid4().hex[:6]}@example.test").id
                shares = [(payee.id, 7_000), (collaborator_id, 3_000)]
            for track_id in track_ids:
                set_split_sheet(s, catalog.get_track(s, track_id), shares, clock=self.clock)
            info = {"user": user, "artist_id": artist.id, "release_id": release.id, "tracks": track_ids,
                    "payee_id": payee.id, "collaborator_id": collaborator_id, "slug": artist.slug,
                    "release_slug": release.slug}
        return info

    @staticmethod
    def screen(session, *, sha256, path):
        from rights.staydown import screen_upload

        screen_upload(session, sha256=sha256, path=path)

    # earnings through the flush's policy ---------------------------------------------------------------
    def earn(self, track_id: int, price_micros: int, *, count: int = 1) -> int:
        """`count` gate impressions for the track, posted the way the flush posts them; the artists' side."""
        from adserver.stream import StreamImpression
        from core.money import share_ceil
        from ledger import services as ledger
        from royalties.accrual import entries_for

        at = self.clock.now()
        impressions = [StreamImpression(uuid.uuid4().hex, 1, 1, 1, "gate", track_id, f"l-{uuid.uuid4().hex[:8]}",
                                        "gate", price_micros, "USD", at) for _ in range(count)]
        with self.unit() as s:
            self._fund(s)
            entries = entries_for(s, impressions)
            ledger.post_many(s, [e for e, _ in entries])
        return share_ceil(price_micros * count, 9, 10)

    def _fund(self, s):
        from ledger import services as ledger
        from ledger.accounts import STRIPE, advertiser_prepaid

        if "USD" in self.funded:
            return
        amount = 10**13
        ledger.post(s, ledger.Entry("fund:1:USD", datetime(2026, 1, 1, tzinfo=UTC), "funding",
                                    [ledger.Posting(STRIPE, "debit", amount, "USD"),
                                     ledger.Posting(advertiser_prepaid(1), "credit", amount, "USD")],
                                    metadata={"event": "advertiser_funding"}))
        self.funded.add("USD")

    def balance(self, code: str) -> int:
        from ledger import services as ledger

        with self.sessions() as s:
            return ledger.balance(s, code, "USD")

    def check_books(self):
        from ledger.checks import check_books

        with self.sessions() as s:
            report = check_books(s)
        assert report.ok, [p.message for p in report.problems]

    # rights ---------------------------------------------------------------------------------------------------
    def file(self, claimant, tracks, **kw) -> int:
        from rights import services

        with self.unit() as s:
            return services.file_notice(s, s.merge(claimant), payload(tracks, **kw.pop("payload_overrides", {})),
                                        clock=self.clock, settings=self.settings, **kw).id

    def action(self, admin, notice_id: int, reason: str = "The tracks copy the claimant's recording.") -> None:
        from rights import services

        with self.unit() as s:
            services.action_notice(s, notice_id, s.merge(admin), reason=reason, clock=self.clock,
                                   settings=self.settings,
                                   audio_path=lambda sha: self.store.path_for("audio", sha))

    def actioned(self, holder, admin, tracks) -> tuple[int, int]:
        """`holder` files a notice against `tracks` and `admin` actions it: (notice id, its first case's id)."""
        notice_id = self.file(holder, list(tracks))
        self.action(admin, notice_id)
        return notice_id, self.case_ids(notice_id)[0]

    def take_down(self, track_ids) -> int:
        """A fresh rights holder's notice against these tracks, actioned by a fresh admin: the notice's id."""
        return self.actioned(self.user("rights_holder", name="holder"), self.user("admin", name="admin"),
                             track_ids)[0]

    # the parties' moves, each its own unit of work (as a request is) ---------------------------------------
    def counter(self, case_id: int, user, *, settings: RightsSettings | None = None, **overrides):
        from rights import services

        with self.unit() as s:
            services.file_counter_notice(s, case_id, s.merge(user), {**COUNTER, **overrides}, clock=self.clock,
                                         settings=settings or self.settings)

    def accept(self, case_id: int, user) -> None:
        from rights import services

        with self.unit() as s:
            services.accept_notice(s, case_id, s.merge(user), clock=self.clock, settings=self.settings)

    def withdraw(self, notice_id: int, user=None, *, reason: str = "") -> None:
        """The claimant (`user`, or the notice's own claimant when None) withdraws the notice."""
        from core.users import get_user
        from rights import services
        from rights.models import Notice

        with self.unit() as s:
            who = s.merge(user) if user is not None else get_user(s, s.get(Notice, notice_id).claimant_user_id)
            services.withdraw_notice(s, notice_id, who, clock=self.clock, settings=self.settings, reason=reason)

    def court(self, case_id: int, user, reference: str) -> None:
        from rights import services

        with self.unit() as s:
            services.report_court_action(s, case_id, s.merge(user), clock=self.clock, settings=self.settings,
                                         reference=reference)

    def case_ids(self, notice_id: int) -> list[int]:
        from sqlalchemy import select

        from rights.models import Case

        with self.sessions() as s:
            return list(s.scalars(select(Case.id).where(Case.notice_id == notice_id).order_by(Case.id)))

    def case(self, case_id: int):
        from rights.models import Case

        with self.sessions() as s:
            case = s.get(Case, case_id)
            s.expunge(case)
            return case

    def track_status(self, track_id: int) -> str:
        from catalog.models import Track

        with self.sessions() as s:
            track = s.get(Track, track_id)
            return "taken_down" if "taken_down" in (track.status, track.release.status) else track.status

    def tick(self):
        from rights import services

        with self.unit() as s:
            return services.tick(s, clock=self.clock, settings=self.settings)


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def rights_app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def settings():
    return RightsSettings(public_url="http://127.0.0.1:8000")


@pytest.fixture
def world(rights_app, clock, settings):
    return RightsWorld(rights_app, clock, settings)


@pytest.fixture
def holder(world):
    return world.user("rights_holder", name="holder")


@pytest.fixture
def admin(world):
    return world.user("admin", name="admin")
