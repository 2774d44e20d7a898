"""The charge side of the Stripe boundary, over real HTTP with the real SDK against the Stripe-wire stand-in
(localstripe always reports a fee of 0, so the fee path is proven here)."""

from __future__ import annotations

import json

import pytest

from payments.errors import PaymentsError


def test_the_fee_comes_from_the_balance_transactions_stripe_fee(stripe_client, connect_standin):
    created = stripe_client.create_payment_intent(amount_minor=1000, currency="USD", idempotency_key="order:1",
                                                  payment_method="pm_card_visa", metadata={"order_id": "1"})
    assert created.status == "succeeded"
    fetched = stripe_client.retrieve_payment_intent(created.id)
    assert connect_standin.fee_for(1000) == 59
    assert fetched.fee_minor == 59  # 2.9% + 30: read from latest_charge.balance_transaction.fee_details
    assert fetched.charge_id == connect_standin.payment_intents[created.id]["latest_charge"]
    assert fetched.metadata == {"order_id": "1"}


def test_only_stripe_fee_entries_count_as_the_processing_fee(stripe_client, connect_standin):
    created = stripe_client.create_payment_intent(amount_minor=2000, currency="USD", idempotency_key="order:2",
                                                  payment_method="pm_card_visa")
    txn_id = connect_standin.charges[connect_standin.payment_intents[created.id]["latest_charge"]]["balance_transaction"]
    txn = connect_standin.balance_transactions[txn_id]
    txn["fee_details"].append({"type": "application_fee", "amount": 100, "currency": "usd"})
    txn["fee"] += 100
    assert stripe_client.retrieve_payment_intent(created.id).fee_minor == connect_standin.fee_for(2000)


def test_an_intent_for_the_card_element_is_not_confirmed_and_carries_its_client_secret(stripe_client,
                                                                                       connect_standin):
    created = stripe_client.create_payment_intent(amount_minor=750, currency="EUR", idempotency_key="order:3")
    assert created.status == "requires_payment_method"
    assert created.client_secret.startswith(created.id + "_secret_")
    assert created.fee_minor is None  # no charge yet: the fee is not known
    connect_standin.confirm(created.id, "pm_card_threeDSecure2Required")
    assert stripe_client.retrieve_payment_intent(created.id).status == "requires_action"
    connect_standin.complete_action(created.id)
    done = stripe_client.retrieve_payment_intent(created.id)
    assert (done.status, done.fee_minor, done.currency) == ("succeeded", connect_standin.fee_for(750), "EUR")


def test_refunds_are_listed_and_an_over_refund_is_declined(stripe_client, connect_standin):
    created = stripe_client.create_payment_intent(amount_minor=1000, currency="USD", idempotency_key="order:4",
                                                  payment_method="pm_card_visa")
    first = stripe_client.refund(payment_intent=created.id, amount_minor=400, idempotency_key="refund:1")
    again = stripe_client.refund(payment_intent=created.id, amount_minor=400, idempotency_key="refund:1")
    assert first.id == again.id and first.amount_minor == 400
    with pytest.raises(PaymentsError):
        stripe_client.refund(payment_intent=created.id, amount_minor=601, idempotency_key="refund:2")
    assert [r.id for r in stripe_client.list_refunds(created.id)] == [first.id]


def test_a_dispute_reports_its_amount_and_fee(stripe_client, connect_standin):
    created = stripe_client.create_payment_intent(amount_minor=1000, currency="USD", idempotency_key="order:5",
                                                  payment_method="pm_card_visa")
    opened = connect_standin.dispute(created.id, fee=1500)
    dispute = stripe_client.retrieve_dispute(opened["id"])
    assert (dispute.amount_minor, dispute.fee_minor, dispute.status, dispute.payment_intent) == (
        1000, 1500, "needs_response", created.id)
    connect_standin.close_dispute(opened["id"], won=True, fee_returned=True)
    won = stripe_client.retrieve_dispute(opened["id"])
    assert (won.status, won.fee_minor) == ("won", 0)


def test_construct_event_verifies_the_signature_and_its_age(stripe_client, connect_standin):
    event = connect_standin.event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    payload = json.dumps(event).encode()
    header = connect_standin.sign(payload, "whsec_test")
    assert stripe_client.construct_event(payload, header, "whsec_test")["id"] == event["id"]
    with pytest.raises(PaymentsError) as forged:
        stripe_client.construct_event(payload, connect_standin.sign(payload, "whsec_other"), "whsec_test")
    assert forged.value.code == "bad_webhook_signature"
    stale = connect_standin.sign(payload, "whsec_test", timestamp=1_600_000_000)
    with pytest.raises(PaymentsError):
        stripe_client.construct_event(payload, stale, "whsec_test")
    with pytest.raises(PaymentsError):
        stripe_client.construct_event(payload + b" ", header, "whsec_test")
