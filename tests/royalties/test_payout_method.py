"""Payout methods are verified out of band (issue 9, the end of the payee takeover).

Saving a method used to verify it at once and silently disable the old one. Now a new method waits (pending)
beside the verified one until the payee follows a signed, expiring link emailed to their account, and its
rail agrees; the payee is emailed at every change. The emails go through RQ to a real SMTP server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from payments import services as payments
from payments.models import PayoutMethod
from royalties.models import PayoutItem
from royalties.services import draft_batch
from tests.conftest import CliRunner, login
from tests.royalties.helpers import close, manual, sepa

FORM = {"csrf_token": "test-csrf"}
HTML = {"Accept": "text/html"}
OCT5 = datetime(2026, 10, 5, tzinfo=UTC)
NEW_IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def rapp(make_app, clock, connect_standin, smtp):  # noqa: F811 - this module's app also sends email
    return make_app(clock=clock, stripe_api_base=connect_standin.url, smtp_url=smtp.url)


def _work(rapp) -> None:
    result = CliRunner(rapp).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0 and "0 failed jobs" in result.output, result.output


def _methods(world, payee_id) -> dict[str, list[PayoutMethod]]:
    with world.session() as s:
        rows = s.query(PayoutMethod).filter_by(payee_id=payee_id).order_by(PayoutMethod.id).all()
        out: dict[str, list[PayoutMethod]] = {}
        for m in rows:
            out.setdefault(m.status, []).append(m)
        return out


def _link(mail) -> str:
    found = re.search(r"http://\S+/royalties/payout-method/confirm/(\S+)", mail["body"])
    assert found, mail["body"]
    return found[1]


def test_saving_a_method_verifies_nothing_until_the_emailed_link_is_followed(world, rapp, smtp):
    ana = world.artist("Ana")
    old = sepa(world, ana["payee_id"])  # verified, confirmed earlier
    assert old.status == "verified"
    client = rapp.test_client()
    login(client, ana["user"])
    url = f"/royalties/payout-method/{ana['payee_id']}"
    saved = client.post(url, data={**FORM, "kind": "sepa", "holder_name": "Ana", "iban": NEW_IBAN})
    assert saved.status_code == 303
    methods = _methods(world, ana["payee_id"])
    assert [m.id for m in methods["verified"]] == [old.id]  # the old one is still the one payouts use
    assert "disabled" not in methods
    [new] = methods["pending"]
    assert new.confirmed_at is None and new.verified_at is None
    page = client.get(url, headers=HTML).text
    assert "FR76" not in page and "…2606" in page and "…3000" in page and "waiting for confirmation" in page

    _work(rapp)
    [request] = smtp.to(ana["user"].email)  # the payee's account email, nowhere else
    assert "Confirm" in request["subject"] and "IBAN …3000" in request["body"] and "…2606" in request["body"]
    token = _link(request)
    shown = client.get(f"/royalties/payout-method/confirm/{token}", headers=HTML)
    assert shown.status_code == 200 and "Confirm this payout method" in shown.text
    assert _methods(world, ana["payee_id"])["pending"][0].confirmed_at is None  # a GET changes nothing
    confirmed = client.post(f"/royalties/payout-method/confirm/{token}", data=FORM)
    assert confirmed.status_code == 303
    methods = _methods(world, ana["payee_id"])
    assert [m.id for m in methods["verified"]] == [new.id] and [m.id for m in methods["disabled"]] == [old.id]

    _work(rapp)
    changed = [m for m in smtp.to(ana["user"].email) if "changed" in m["subject"]]
    assert len(changed) == 1 and "IBAN …3000" in changed[0]["body"] and "…2606" in changed[0]["body"]


def test_the_link_is_signed_expiring_single_purpose_and_for_the_payees_people_only(world, rapp, smtp,
                                                                                  make_user, clock):
    ana = world.artist("Ana")
    with world.unit() as s:
        first = payments.add_sepa_method(s, ana["payee_id"], holder_name="Ana", iban=NEW_IBAN, bic=None,
                                         clock=clock)
        token = payments.confirmation_token(first, rapp.extensions["ninety"].config.secret_key, clock=clock)
    client = rapp.test_client()
    login(client, ana["user"])
    base = "/royalties/payout-method/confirm/"
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.post(base + forged, data=FORM).status_code == 404
    stranger = rapp.test_client()
    login(stranger, make_user(roles=("artist",)))
    assert stranger.post(base + token, data=FORM).status_code == 404  # a leaked link needs the payee's account
    clock.set(clock.now() + timedelta(hours=49))
    assert client.post(base + token, data=FORM).status_code == 410
    clock.set(clock.now() - timedelta(hours=48))
    # A second save withdraws the first request: its link no longer confirms anything.
    client.post(f"/royalties/payout-method/{ana['payee_id']}",
                data={**FORM, "kind": "manual", "holder_name": "Ana", "instructions": "PayPal ana@example.com"})
    assert client.post(base + token, data=FORM).status_code == 409
    methods = _methods(world, ana["payee_id"])
    assert "verified" not in methods and methods["pending"][0].kind == "manual"
    assert methods["disabled"][0].id == first.id and methods["disabled"][0].confirmed_at is None


def test_a_draft_pays_the_verified_method_while_a_replacement_waits(world, rapp, stripe_client):
    ana = world.artist("Ana")
    world.gate_revenue(ana["tracks"][0], 30_000_000, OCT5)
    old = manual(world, ana["payee_id"])
    with world.unit() as s:
        payments.verify_method(s, old.id, clock=world.clock, verifier_id=world.finance("fin").id)
        replacement = payments.add_stripe_method(s, ana["payee_id"], holder_name="Ana", email="ana@example.com",
                                                 country="US", stripe=stripe_client, clock=world.clock)
    assert replacement.status == "pending"  # Stripe says payouts are enabled, but nobody confirmed it
    close(world)
    with world.session() as s:
        batch = draft_batch(s, "2026-10", currency="USD", drafted_by=world.finance("fin").id, clock=world.clock,
                            threshold_micros=10_000_000)
        s.commit()
        [item] = s.query(PayoutItem).filter_by(batch_id=batch.id).all()
        assert (item.payee_id, item.method_id, item.rail) == (ana["payee_id"], old.id, "manual")


def test_a_connect_account_is_verified_by_the_link_and_stripe_together(world, rapp, smtp, connect_standin):
    ana = world.artist("Ana")
    client = rapp.test_client()
    login(client, ana["user"])
    saved = client.post(f"/royalties/payout-method/{ana['payee_id']}",
                        data={**FORM, "kind": "stripe_connect", "holder_name": "Ana", "country": "DE"})
    assert saved.status_code == 303
    [pending] = _methods(world, ana["payee_id"])["pending"]
    assert pending.kind == "stripe_connect"
    _work(rapp)
    [request] = smtp.to(ana["user"].email)
    connect_standin.disable_payouts(pending.stripe_account_id)  # onboarding at Stripe not finished yet
    assert client.post(f"/royalties/payout-method/confirm/{_link(request)}", data=FORM).status_code == 303
    [confirmed] = _methods(world, ana["payee_id"])["pending"]
    assert confirmed.confirmed_at is not None
    connect_standin.accounts[pending.stripe_account_id]["payouts_enabled"] = True
    assert client.post(f"/royalties/payout-method/{ana['payee_id']}/verify", data=FORM).status_code == 303
    assert [m.id for m in _methods(world, ana["payee_id"])["verified"]] == [pending.id]
    _work(rapp)
    assert [m["subject"] for m in smtp.to(ana["user"].email)][1:] == [
        "Payout method confirmed for Ana", "Payout method changed for Ana"]
