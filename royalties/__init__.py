"""Attribution, the 90/10 policy, monthly close, payout batches, rails and statements."""
