"""Payments: the Stripe boundary (charges, Connect transfers, webhooks), payout methods and the SEPA file."""
