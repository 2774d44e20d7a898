"""One refused flush entry stops nothing: it is parked with its reason, the rest of the batch and every other
advertiser flush on, and finance settles it once (retry after a top-up, or write off)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from adserver import keys, services
from adserver import stream as ad_stream
from adserver.models import Impression
from adserver.stream import StreamImpression, encode_impression
from ledger.accounts import BAD_DEBT, INCOME_ADS, advertiser_prepaid, payee_payable
from ledger.services import balance
from royalties import suspense, worker
from royalties.errors import ParkedEntriesUnsettled, ParkedEntrySettled, ParkedEntryStillRefused
from royalties.models import ParkedEntry
from royalties.services import close_period
from tests.conftest import login

FORM = {"csrf_token": "test-csrf"}


def flush(app, **kwargs):
    runtime = app.extensions["ninety"]
    return worker.run_worker(runtime.redis, runtime.sessions, consumer="test", batch_size=100, block_ms=10,
                             max_idle_loops=1, **kwargs)


def push(redis, clock, advertiser_id: int, *, track_id=None, price=500, mode="gate", listener="l1", campaign_id=1,
         at=None) -> str:
    """A counted impression straight onto the stream, as the charge script appends it (Redis's budget and the
    ledger disagreeing is exactly the case under test)."""
    decision = uuid.uuid4().hex
    redis.xadd(ad_stream.stream_for(advertiser_id), encode_impression(StreamImpression(
        decision_id=decision, campaign_id=campaign_id, advertiser_id=advertiser_id, creative_id=1,
        slot="browse" if mode == "key" else "gate", track_id=track_id, listener_id=listener, mode=mode,
        price_micros=price, currency="USD", at=at or clock.now())))
    return decision


def ledger_check(app):
    result = ninety(app, "ledger", "check")
    assert result.exit_code == 0, result.output


def ninety(app, *args):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from app.cli import main

    info = ScriptInfo(create_app=lambda: app, set_debug_flag=False, load_dotenv_defaults=False)
    return CliRunner().invoke(main, list(args), obj=info)


@pytest.fixture
def refused_batch(ad_app, ad_session, ad_redis, make_advertiser, make_split_track, clock):
    """One batch: a broke advertiser (1,000 micros prepaid, 1,500 of impressions on a track) and a funded one
    sharing the same track, plus the funded one's key-mode impressions."""
    track, artist, collaborator = make_split_track()
    broke, funded = make_advertiser(funded_micros=1_000), make_advertiser(funded_micros=1_000_000)
    mine = [push(ad_redis, clock, broke.id, track_id=track.id, campaign_id=7, listener=f"b{i}") for i in range(3)]
    theirs = [push(ad_redis, clock, funded.id, track_id=track.id, listener=f"f{i}") for i in range(4)]
    theirs += [push(ad_redis, clock, funded.id, mode="key", listener="k1") for _ in range(2)]
    return {"track": track, "artist": artist, "collaborator": collaborator, "broke": broke, "funded": funded,
            "mine": mine, "theirs": theirs}


def _parked(session) -> list[ParkedEntry]:
    session.rollback()
    session.expire_all()  # what other sessions (the worker, the CLI, a request) committed since
    return list(session.scalars(select(ParkedEntry).order_by(ParkedEntry.id)))


def test_a_refused_entry_is_parked_and_every_other_advertiser_flushes_on(ad_app, ad_session, ad_redis,
                                                                          refused_batch):
    stats = flush(ad_app)
    broke, funded = refused_batch["broke"], refused_batch["funded"]
    # The funded advertiser's impressions on the same track, in the same batch, are paid for.
    assert balance(ad_session, advertiser_prepaid(funded.id), "USD") == 1_000_000 - 6 * 500
    assert balance(ad_session, advertiser_prepaid(broke.id), "USD") == 1_000  # nothing taken past the bound
    assert stats.stored == 9 and stats.parked == 3 and stats.batches == 1
    [parked] = _parked(ad_session)
    assert (parked.status, parked.advertiser_id, parked.campaign_ids, parked.amount_micros, parked.impressions,
            parked.currency, parked.period) == ("parked", broke.id, [7], 1_500, 3, "USD", "2026-10")
    assert parked.reason_code == "insufficient_balance" and "below its allowed balance" in parked.reason
    assert sorted(d.hex for d in parked.decision_ids) == sorted(refused_batch["mine"])
    # Every impression row is stored once; the parked ones with no entry (yet).
    rows = {r.decision_id.hex: r for r in ad_session.scalars(select(Impression))}
    assert set(rows) == set(refused_batch["mine"]) | set(refused_batch["theirs"])
    assert all(rows[d].entry_id is None for d in refused_batch["mine"])
    assert all(rows[d].entry_id is not None for d in refused_batch["theirs"])
    assert ad_stream.length(ad_redis) == 0
    assert sum(ad_redis.xpending(s, keys.CONSUMER_GROUP)["pending"] for s in keys.impression_streams()) == 0
    ledger_check(ad_app)


def test_a_restarted_worker_does_not_loop_and_later_batches_flush(ad_app, ad_session, ad_redis, refused_batch,
                                                                   clock):
    flush(ad_app)
    again = flush(ad_app)  # a restart: nothing pending, nothing parked twice
    assert again.batches == 0 and again.parked == 0
    later = push(ad_redis, clock, refused_batch["funded"].id, track_id=refused_batch["track"].id, listener="z")
    push(ad_redis, clock, refused_batch["broke"].id, track_id=refused_batch["track"].id, listener="y",
         price=1_001)  # more than its whole prepaid balance
    after = flush(ad_app)
    assert after.stored == 2 and after.parked == 1
    ad_session.rollback()
    assert ad_session.scalar(select(Impression.entry_id).where(Impression.decision_id == uuid.UUID(later)))
    assert len(_parked(ad_session)) == 2
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 11


def test_the_accepted_part_of_a_broke_advertisers_batch_is_still_posted(ad_app, ad_session, ad_redis,
                                                                         make_advertiser, make_split_track, clock):
    track, _, _ = make_split_track()
    other, _, _ = make_split_track()
    broke = make_advertiser(funded_micros=1_000)
    push(ad_redis, clock, broke.id, track_id=track.id, price=800)  # fits: posted
    push(ad_redis, clock, broke.id, track_id=other.id, price=700)  # would take it below zero: parked
    stats = flush(ad_app)
    assert stats.stored == 2 and stats.parked == 1
    assert balance(ad_session, advertiser_prepaid(broke.id), "USD") == 200
    [parked] = _parked(ad_session)
    assert parked.amount_micros == 700


def test_retry_after_a_top_up_posts_the_entry_exactly_once(ad_app, ad_session, ad_redis, refused_batch, clock):
    flush(ad_app)
    [parked] = _parked(ad_session)
    broke = refused_batch["broke"]
    artist_before = balance(ad_session, payee_payable(refused_batch["artist"]), "USD")
    with pytest.raises(ParkedEntryStillRefused, match="still refuse"):
        suspense.retry(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.rollback()
    assert _parked(ad_session)[0].status == "parked"

    services.fund(ad_session, ad_redis, advertiser_id=broke.id, amount_micros=10_000, currency="USD", clock=clock,
                  idempotency_key="top-up")
    settled = suspense.retry(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.commit()
    assert settled.status == "retried" and settled.settled_entry_id is not None
    with pytest.raises(ParkedEntrySettled):
        suspense.retry(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.rollback()
    assert balance(ad_session, advertiser_prepaid(broke.id), "USD") == 11_000 - 1_500
    keyed = ad_session.scalar(text("SELECT count(*) FROM ledger_entries WHERE idempotency_key = :key"),
                              {"key": parked.idempotency_key})
    assert keyed == 1
    rows = ad_session.scalars(select(Impression).where(Impression.advertiser_id == broke.id)).all()
    assert {r.entry_id for r in rows} == {settled.settled_entry_id}
    # 90% of the 1,500 (rounded up) reached the track's payees, by the 70/30 sheet.
    assert balance(ad_session, payee_payable(refused_batch["artist"]), "USD") - artist_before == 945
    ledger_check(ad_app)


def test_write_off_balances_and_still_pays_the_artists(ad_app, ad_session, refused_batch, clock):
    flush(ad_app)
    [parked] = _parked(ad_session)
    income_before = balance(ad_session, INCOME_ADS, "USD")
    artist_before = balance(ad_session, payee_payable(refused_batch["artist"]), "USD")
    collab_before = balance(ad_session, payee_payable(refused_batch["collaborator"]), "USD")
    settled = suspense.write_off(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.commit()
    assert settled.status == "written_off"
    artist_side = 1_350  # share_ceil(1_500, 9, 10)
    assert balance(ad_session, BAD_DEBT, "USD") == artist_side
    assert balance(ad_session, payee_payable(refused_batch["artist"]), "USD") - artist_before == 945
    assert balance(ad_session, payee_payable(refused_batch["collaborator"]), "USD") - collab_before == 405
    assert balance(ad_session, INCOME_ADS, "USD") == income_before  # the platform books no income it never got
    assert balance(ad_session, advertiser_prepaid(refused_batch["broke"].id), "USD") == 1_000
    with pytest.raises(ParkedEntrySettled):
        suspense.write_off(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.rollback()
    ledger_check(ad_app)


def test_the_month_cannot_close_while_its_revenue_is_parked(ad_app, ad_session, ad_redis, refused_batch, clock):
    flush(ad_app)
    [parked] = _parked(ad_session)
    clock.set(clock.now() + timedelta(days=20))  # November: October is over
    with pytest.raises(ParkedEntriesUnsettled, match=r"1 ad flush entry of 2026-10 or earlier .* is parked"):
        close_period(ad_session, ad_redis, "2026-10", clock=clock)
    ad_session.rollback()
    suspense.write_off(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.commit()
    assert close_period(ad_session, ad_redis, "2026-10", clock=clock).period == "2026-10"


def test_finance_lists_and_settles_parked_entries_from_the_cli(ad_app, ad_session, ad_redis, refused_batch, clock,
                                                               make_user):
    flush(ad_app)
    [parked] = _parked(ad_session)
    listed = ninety(ad_app, "royalties", "parked")
    assert listed.exit_code == 0, listed.output
    assert f"parked {parked.id} 2026-10 advertiser {refused_batch['broke'].id} campaigns 7" in listed.output
    assert "insufficient_balance" in listed.output and "1 parked entry waiting" in listed.output
    assert ninety(ad_app, "royalties", "settle", str(parked.id)).exit_code != 0  # say how
    refused = ninety(ad_app, "royalties", "settle", str(parked.id), "--retry")
    assert refused.exit_code == 1 and "still refuse" in refused.output
    services.fund(ad_session, ad_redis, advertiser_id=refused_batch["broke"].id, amount_micros=5_000,
                  currency="USD", clock=clock, idempotency_key="top-up-cli")
    ad_session.commit()
    fin = make_user(roles=("finance",))
    done = ninety(ad_app, "royalties", "settle", str(parked.id), "--retry", "--as", fin.email)
    assert done.exit_code == 0 and f"parked {parked.id}: retried" in done.output, done.output
    assert _parked(ad_session)[0].settled_by == fin.id
    assert "0 parked entries waiting" in ninety(ad_app, "royalties", "parked").output
    ledger_check(ad_app)


def test_the_finance_console_shows_parked_entries_and_writes_one_off(ad_app, ad_session, refused_batch, make_user):
    flush(ad_app)
    [parked] = _parked(ad_session)
    fin = make_user(roles=("finance",))
    client = ad_app.test_client()
    login(client, fin)
    page = client.get("/finance")
    assert page.status_code == 200 and f'id="parked-{parked.id}"' in page.text
    assert "below its allowed balance" in page.text
    response = client.post(f"/finance/parked/{parked.id}/write-off", data=FORM)
    assert response.status_code == 302
    assert _parked(ad_session)[0].status == "written_off"
    assert "Nothing parked" in client.get("/finance").text
    again = client.post(f"/finance/parked/{parked.id}/retry", data=FORM, follow_redirects=True)
    assert "settled already" in again.text
    ledger_check(ad_app)
