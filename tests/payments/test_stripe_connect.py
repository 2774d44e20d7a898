"""The Connect rail over real HTTP with the real `stripe` SDK, against our stand-in of /v1/accounts and /v1/transfers."""

from __future__ import annotations

import pytest

from payments.errors import RailDeclined, RailUnavailable
from payments.stripe_client import SdkStripeClient


def test_account_and_transfer_round_trip(stripe_client, connect_standin):
    account = stripe_client.create_connect_account(email="ada@example.com", country="US", idempotency_key="acct-1")
    assert account.id.startswith("acct_") and account.payouts_enabled
    assert stripe_client.retrieve_connect_account(account.id) == account

    transfer = stripe_client.create_transfer(amount_minor=1234, currency="USD", destination=account.id,
                                             idempotency_key="ninety-payout-item-1", description="Ninety 2026-10",
                                             metadata={"item": "1"})
    assert transfer.amount_minor == 1234 and transfer.currency == "USD" and transfer.destination == account.id
    assert transfer.metadata == {"item": "1"}
    assert ("POST", "/v1/transfers") in connect_standin.requests


def test_the_same_idempotency_key_pays_once(stripe_client, connect_standin):
    account = stripe_client.create_connect_account(email="b@example.com", country="DE", idempotency_key="acct-2")
    first = stripe_client.create_transfer(amount_minor=500, currency="EUR", destination=account.id,
                                          idempotency_key="ninety-payout-item-7")
    again = stripe_client.create_transfer(amount_minor=500, currency="EUR", destination=account.id,
                                          idempotency_key="ninety-payout-item-7")
    assert again.id == first.id
    assert len(connect_standin.transfers_to(account.id)) == 1
    with pytest.raises(RailDeclined) as exc:  # same key, other parameters: refused, as Stripe does
        stripe_client.create_transfer(amount_minor=501, currency="EUR", destination=account.id,
                                      idempotency_key="ninety-payout-item-7")
    assert exc.value.code == "stripe_error" or "idempotent" in exc.value.message
    assert len(connect_standin.transfers_to(account.id)) == 1


def test_a_disabled_account_is_declined_and_a_server_error_is_transient(stripe_client, connect_standin):
    account = stripe_client.create_connect_account(email="c@example.com", country="US", idempotency_key="acct-3")
    connect_standin.disable_payouts(account.id)
    assert not stripe_client.retrieve_connect_account(account.id).payouts_enabled
    with pytest.raises(RailDeclined) as declined:
        stripe_client.create_transfer(amount_minor=100, currency="USD", destination=account.id, idempotency_key="k1")
    assert declined.value.code == "account_invalid"

    other = stripe_client.create_connect_account(email="d@example.com", country="US", idempotency_key="acct-4")
    connect_standin.fail_next(1)
    with pytest.raises(RailUnavailable):
        stripe_client.create_transfer(amount_minor=100, currency="USD", destination=other.id, idempotency_key="k2")
    assert connect_standin.transfers_to(other.id) == []
    retried = stripe_client.create_transfer(amount_minor=100, currency="USD", destination=other.id,
                                            idempotency_key="k2")
    assert connect_standin.transfers_to(other.id)[0]["id"] == retried.id


def test_a_wrong_api_key_is_refused(connect_standin):
    client = SdkStripeClient("sk_test_wrong", api_base=connect_standin.url)
    with pytest.raises(Exception) as exc:
        client.create_connect_account(email="e@example.com", country="US", idempotency_key="acct-5")
    assert getattr(exc.value, "code", "") == "stripe_authentication"


def test_the_transport_maps_an_unreachable_stripe_to_unavailable_and_retries_only_when_asked():
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SdkStripeClient("sk_test_ninety_local", api_base=f"http://127.0.0.1:{port}")
    with pytest.raises(RailUnavailable) as exc:
        client.retrieve_payment_intent("pi_nowhere")
    assert exc.value.code == "stripe_unavailable"
    assert "could not be reached" in exc.value.message


def test_the_transport_keeps_one_pool_for_every_thread(connect_standin):
    from concurrent.futures import ThreadPoolExecutor

    client = SdkStripeClient("sk_test_ninety_local", api_base=connect_standin.url)
    intent = client.create_payment_intent(amount_minor=800, currency="USD", idempotency_key="pool-1",
                                          payment_method="pm_card_visa")
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: client.retrieve_payment_intent(intent.id), range(64)))
    assert {s.id for s in seen} == {intent.id} and all(s.fee_minor is not None for s in seen)
    transport = client._client._requestor._client
    assert transport.name == "urllib3"
    pools = list(transport._pool.pools.keys())
    assert len(pools) == 1  # one keep-alive pool to the one host, shared by the eight threads


def test_the_transport_reads_the_proxy_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = SdkStripeClient("sk_test_x")._client._requestor._client
    assert proxied._proxy == {"http": "http://proxy.example:3128", "https": "http://proxy.example:3128"}
    assert type(proxied._pool).__name__ == "ProxyManager"
    monkeypatch.setenv("NO_PROXY", "api.stripe.com")
    direct = SdkStripeClient("sk_test_x")._client._requestor._client
    assert direct._proxy is None and type(direct._pool).__name__ == "PoolManager"
